package server

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/instachat/instachat"
)

// Config is everything a process needs to know. Every field has a default,
// an environment variable and a flag that mirrors it; see Options.
type Config struct {
	Addr            string
	Roles           Roles
	DataDir         string
	Sync            string
	MaxBodyBytes    int
	MaxRequestBytes int64
	ShutdownTimeout time.Duration
	LogLevel        string
	DebugAddr       string

	// Abuse: creates per second and burst per application token (0: no
	// limit), and the token that guards listing every application and
	// /metrics ("": refused to all, but the embedded default generates one
	// into the data directory; see AdminTokenPath).
	RateLimit  float64
	RateBurst  int
	AdminToken string
	// With RateLimit on: searches per second per token (0: RateLimit and
	// its burst, counted apart from creates), application creates per
	// second per client address (0: not limited), whether that address is
	// the proxy's last X-Forwarded-For entry, and whether creating an
	// application needs the admin token.
	SearchRateLimit             float64
	ApplicationRateLimit        float64
	TrustForwardedFor           bool
	RequireAdminForApplications bool

	// IdempotencyTTL is how long an Idempotency-Key answers retries.
	IdempotencyTTL time.Duration

	// Event streams open at once in this process, in all and per
	// application token; over them a stream is refused with 503.
	MaxSubscribers         int
	MaxSubscribersPerToken int

	// The production topology: all of MySQL, Redis and Kafka, optionally
	// Elasticsearch. None of them set means the embedded default.
	MySQLDSN           string
	RedisURL           string
	RedisPrefix        string
	KafkaBrokers       []string
	KafkaTopic         string
	KafkaGroup         string
	KafkaPartitions    int32
	KafkaReplication   int16
	ElasticsearchURL   string
	ElasticsearchIndex string
}

// Roles says which of the seed's actors a process plays.
type Roles struct {
	API        bool // application CRUD, reads, updates, search
	Dispatcher bool // chat and message creation
	Worker     bool // consume the queue, persist, index, maintain counts
}

func (r Roles) String() string {
	var names []string
	for _, x := range []struct {
		on   bool
		name string
	}{{r.API, "api"}, {r.Dispatcher, "dispatcher"}, {r.Worker, "worker"}} {
		if x.on {
			names = append(names, x.name)
		}
	}
	return strings.Join(names, ",")
}

func parseRoles(v string) (Roles, error) {
	var r Roles
	for _, name := range strings.Split(v, ",") {
		switch strings.TrimSpace(strings.ToLower(name)) {
		case "api":
			r.API = true
		case "dispatcher":
			r.Dispatcher = true
		case "worker":
			r.Worker = true
		default:
			return r, fmt.Errorf("unknown role %q (api, dispatcher, worker)", name)
		}
	}
	return r, nil
}

// Production reports whether c asks for the production topology, and
// refuses a half-configured one, naming what is missing: Kafka without
// MySQL would accept creates no worker can store.
func (c Config) Production() (bool, error) {
	set := map[string]bool{
		"INSTACHAT_MYSQL_DSN":     c.MySQLDSN != "",
		"INSTACHAT_REDIS_URL":     c.RedisURL != "",
		"INSTACHAT_KAFKA_BROKERS": len(c.KafkaBrokers) > 0,
	}
	var missing []string
	for _, name := range []string{"INSTACHAT_MYSQL_DSN", "INSTACHAT_REDIS_URL", "INSTACHAT_KAFKA_BROKERS"} {
		if !set[name] {
			missing = append(missing, name)
		}
	}
	switch {
	case len(missing) == 0:
		return true, nil
	case len(missing) < 3:
		return false, fmt.Errorf("the production topology needs MySQL, Redis and Kafka: %s not set", strings.Join(missing, ", "))
	case c.ElasticsearchURL != "":
		return false, fmt.Errorf("INSTACHAT_ELASTICSEARCH_URL needs the production topology: set " +
			"INSTACHAT_MYSQL_DSN, INSTACHAT_REDIS_URL and INSTACHAT_KAFKA_BROKERS")
	case c.Roles != (Roles{API: true, Dispatcher: true, Worker: true}):
		return false, fmt.Errorf("INSTACHAT_ROLES=%s: the embedded default runs all roles in one process; split roles need the production topology",
			c.Roles)
	}
	return false, nil
}

// redact hides the password of a URL or DSN for logs and config dumps.
func redact(s string) string {
	at := strings.LastIndex(s, "@")
	if at < 0 {
		return s
	}
	userinfo := s[:at]
	if i := strings.Index(userinfo, "://"); i >= 0 {
		userinfo = userinfo[i+3:]
	}
	colon := strings.Index(userinfo, ":")
	if colon < 0 {
		return s
	}
	start := strings.Index(s, userinfo) + colon + 1
	return s[:start] + "xxxxx" + s[at:]
}

// envAdminToken names the one setting that is a secret as a whole.
const envAdminToken = "INSTACHAT_ADMIN_TOKEN"

// hidden shows whether a secret is set, never what it is.
func hidden(secret string) string {
	if secret == "" {
		return ""
	}
	return "xxxxx"
}

// bearerToken reports whether s can travel as a Bearer credential: the
// token68 characters of RFC 6750, with = only at the end.
func bearerToken(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("-._~+/", c) >= 0) {
			return false
		}
	}
	return true
}

// RateLimitPolicy is the per-token limit on creates that c asks for, and
// whether it asks for one at all.
func (c Config) RateLimitPolicy() (instachat.RateLimit, bool) {
	if c.RateLimit <= 0 {
		return instachat.RateLimit{}, false
	}
	burst := c.RateBurst
	if burst == 0 {
		burst = max(int(math.Ceil(c.RateLimit)), 1)
	}
	return instachat.RateLimit{PerSecond: c.RateLimit, Burst: burst}, true
}

// SearchRateLimitPolicy is the per-token limit on searches that c asks for:
// on with RateLimit, at SearchRateLimit (0: RateLimit, with its burst), on a
// budget of its own.
func (c Config) SearchRateLimitPolicy() (instachat.RateLimit, bool) {
	limit, on := c.RateLimitPolicy()
	if !on || c.SearchRateLimit == 0 {
		return limit, on
	}
	return instachat.RateLimit{PerSecond: c.SearchRateLimit, Burst: max(int(math.Ceil(c.SearchRateLimit)), 1)}, true
}

// ApplicationRateLimitPolicy is the per-address limit on application
// creates that c asks for: on with RateLimit unless ApplicationRateLimit is
// 0, with a burst of one minute's worth (at least 1).
func (c Config) ApplicationRateLimitPolicy() (instachat.RateLimit, bool) {
	if _, on := c.RateLimitPolicy(); !on || c.ApplicationRateLimit <= 0 {
		return instachat.RateLimit{}, false
	}
	return instachat.RateLimit{PerSecond: c.ApplicationRateLimit, Burst: max(int(math.Ceil(60*c.ApplicationRateLimit)), 1)}, true
}

// rate parses a rate setting: 0 or 0.001 to 1000000 per second.
func rate(v string, into *float64) error {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f != 0 && !(f >= 0.001 && f <= 1e6) { // NaN fails both
		return fmt.Errorf("must be 0 or a number from 0.001 to 1000000")
	}
	*into = f
	return nil
}

// boolean parses an on/off setting.
func boolean(v string, into *bool) error {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return fmt.Errorf("must be true or false")
	}
	*into = b
	return nil
}

// Option is one row of the configuration table: a setting's environment
// variable, its flag, the kind of value the flag takes as -help names it,
// its default and what it means.
type Option struct {
	Env, Flag, Kind, Default, Usage string
	set                             func(c *Config, v string) error
	get                             func(c *Config) string
}

// Value is o's setting in c as `instachat config` prints it: passwords in
// URLs and DSNs and the admin token hidden.
func (o Option) Value(c Config) string { return o.get(&c) }

// Options is the configuration table: the single place a setting is named,
// defaulted, parsed and documented (the README's table mirrors it).
var Options = []Option{
	{"INSTACHAT_ADDR", "addr", "host:port", ":8080", "address to listen on",
		func(c *Config, v string) error { c.Addr = v; return nil },
		func(c *Config) string { return c.Addr }},
	{"INSTACHAT_ROLES", "roles", "list", "api,dispatcher,worker",
		"roles this process plays: api, dispatcher, worker (production topology only for a subset)",
		func(c *Config, v string) (err error) { c.Roles, err = parseRoles(v); return err },
		func(c *Config) string { return c.Roles.String() }},
	{"INSTACHAT_DATA_DIR", "data-dir", "path", "./instachat-data", "directory of the embedded database",
		func(c *Config, v string) error { c.DataDir = v; return nil },
		func(c *Config) string { return c.DataDir }},
	{"INSTACHAT_SYNC", "sync", "mode", "normal", "embedded durability: normal survives a process crash, full also a power loss (fsync per commit)",
		func(c *Config, v string) error {
			v = strings.ToLower(v)
			if v != "normal" && v != "full" {
				return fmt.Errorf("must be normal or full")
			}
			c.Sync = v
			return nil
		},
		func(c *Config) string { return c.Sync }},
	{"INSTACHAT_MAX_BODY_BYTES", "max-body-bytes", "int", "65536", "largest message body in bytes",
		func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return fmt.Errorf("must be a positive integer")
			}
			c.MaxBodyBytes = n
			return nil
		},
		func(c *Config) string { return strconv.Itoa(c.MaxBodyBytes) }},
	{"INSTACHAT_MAX_REQUEST_BYTES", "max-request-bytes", "int", "0",
		"largest request body in bytes (0: 6 × max body + 64 KiB, room for any JSON escapes)",
		func(c *Config, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return fmt.Errorf("must be a non-negative integer")
			}
			c.MaxRequestBytes = n
			return nil
		},
		func(c *Config) string { return strconv.FormatInt(c.MaxRequestBytes, 10) }},
	{"INSTACHAT_SHUTDOWN_TIMEOUT", "shutdown-timeout", "duration", "30s", "how long SIGTERM waits for in-flight requests and queued work",
		func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return fmt.Errorf("must be a positive duration such as 30s")
			}
			c.ShutdownTimeout = d
			return nil
		},
		func(c *Config) string { return c.ShutdownTimeout.String() }},
	{"INSTACHAT_LOG_LEVEL", "log-level", "level", "info", "debug, info, warn or error",
		func(c *Config, v string) error {
			switch strings.ToLower(v) {
			case "debug", "info", "warn", "error":
				c.LogLevel = strings.ToLower(v)
				return nil
			}
			return fmt.Errorf("must be debug, info, warn or error")
		},
		func(c *Config) string { return c.LogLevel }},
	{"INSTACHAT_DEBUG_ADDR", "debug-addr", "host:port", "", "address of a pprof server for profiling, e.g. 127.0.0.1:6060 (empty: off; never expose it)",
		func(c *Config, v string) error { c.DebugAddr = v; return nil },
		func(c *Config) string { return c.DebugAddr }},
	{"INSTACHAT_RATE_LIMIT", "rate-limit", "float", "0",
		"chat and message creates per second per application token, 429 beyond (0: off, the default, since a fair " +
			"rate depends on the clients; set it where they are not all trusted)",
		func(c *Config, v string) error {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f != 0 && !(f >= 0.001 && f <= 1e6) { // NaN fails both
				return fmt.Errorf("must be 0 (off) or a number from 0.001 to 1000000")
			}
			c.RateLimit = f
			return nil
		},
		func(c *Config) string { return strconv.FormatFloat(c.RateLimit, 'g', -1, 64) }},
	{"INSTACHAT_IDEMPOTENCY_TTL", "idempotency-ttl", "duration", "24h",
		"how long a create sent with an Idempotency-Key answers its retries with the original (at least 1m)",
		func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < time.Minute {
				return fmt.Errorf("must be a duration of at least 1m such as 24h")
			}
			c.IdempotencyTTL = d
			return nil
		},
		func(c *Config) string { return c.IdempotencyTTL.String() }},
	{"INSTACHAT_RATE_BURST", "rate-burst", "int", "0",
		"creates a token may make at once after a quiet spell, refilled at the rate (0: one second's worth, at least 1)",
		func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 1e6 {
				return fmt.Errorf("must be an integer from 0 to 1000000")
			}
			c.RateBurst = n
			return nil
		},
		func(c *Config) string { return strconv.Itoa(c.RateBurst) }},
	{"INSTACHAT_SEARCH_RATE_LIMIT", "search-rate-limit", "float", "0",
		"with INSTACHAT_RATE_LIMIT on: searches per second per application token, counted apart from creates, " +
			"429 beyond (0: INSTACHAT_RATE_LIMIT and its burst)",
		func(c *Config, v string) error { return rate(v, &c.SearchRateLimit) },
		func(c *Config) string { return strconv.FormatFloat(c.SearchRateLimit, 'g', -1, 64) }},
	{"INSTACHAT_APPLICATION_RATE_LIMIT", "application-rate-limit", "float", "0.1",
		"with INSTACHAT_RATE_LIMIT on: application creates per second per client address, with a burst of " +
			"one minute's worth, 429 beyond (0: not limited); the admin token is never limited",
		func(c *Config, v string) error { return rate(v, &c.ApplicationRateLimit) },
		func(c *Config) string { return strconv.FormatFloat(c.ApplicationRateLimit, 'g', -1, 64) }},
	{"INSTACHAT_TRUST_FORWARDED_FOR", "trust-forwarded-for", "bool", "false",
		"take the client address of application creates from the last X-Forwarded-For entry instead of the " +
			"connection; only behind a proxy that appends it, as anyone can send the header",
		func(c *Config, v string) error { return boolean(v, &c.TrustForwardedFor) },
		func(c *Config) string { return strconv.FormatBool(c.TrustForwardedFor) }},
	{envAdminToken, "admin-token", "token", "",
		"secret of at least 16 characters required as Authorization: Bearer to list all applications and read " +
			"/metrics (empty: the embedded default generates one into DATA_DIR/admin-token and logs it once; " +
			"production refuses both); prefer the variable, as a flag shows in ps",
		func(c *Config, v string) error {
			if v != "" && (len(v) < 16 || !bearerToken(v)) {
				return fmt.Errorf("must be at least 16 characters of A-Z a-z 0-9 - . _ ~ + / (and = at the end), e.g. from openssl rand -base64 24")
			}
			c.AdminToken = v
			return nil
		},
		func(c *Config) string { return hidden(c.AdminToken) }},
	{"INSTACHAT_REQUIRE_ADMIN_FOR_APPLICATIONS", "require-admin-for-applications", "bool", "false",
		"creating an application needs the admin token too (401 otherwise), for deployments where the " +
			"operator hands out application tokens",
		func(c *Config, v string) error { return boolean(v, &c.RequireAdminForApplications) },
		func(c *Config) string { return strconv.FormatBool(c.RequireAdminForApplications) }},
	{"INSTACHAT_MAX_SUBSCRIBERS", "max-subscribers", "int", "10000",
		"event streams (SSE and WebSocket) this process holds open at once; over it a new one is answered 503 with Retry-After",
		func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return fmt.Errorf("must be a positive integer")
			}
			c.MaxSubscribers = n
			return nil
		},
		func(c *Config) string { return strconv.Itoa(c.MaxSubscribers) }},
	{"INSTACHAT_MAX_SUBSCRIBERS_PER_TOKEN", "max-subscribers-per-token", "int", "100",
		"event streams one application token may hold open at once in this process; over it 503 with Retry-After",
		func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return fmt.Errorf("must be a positive integer")
			}
			c.MaxSubscribersPerToken = n
			return nil
		},
		func(c *Config) string { return strconv.Itoa(c.MaxSubscribersPerToken) }},
	{"INSTACHAT_MYSQL_DSN", "mysql-dsn", "dsn", "", "production: go-sql-driver DSN of MySQL, e.g. user:pass@tcp(db:3306)/instachat",
		func(c *Config, v string) error { c.MySQLDSN = v; return nil },
		func(c *Config) string { return redact(c.MySQLDSN) }},
	{"INSTACHAT_REDIS_URL", "redis-url", "url", "",
		"production: Redis for numbering, rate limits and feeds, redis://host:port/db; a Redis Cluster as redis://host:port?addr=host:port&addr=host:port",
		func(c *Config, v string) error { c.RedisURL = v; return nil },
		func(c *Config) string { return redact(c.RedisURL) }},
	{"INSTACHAT_REDIS_PREFIX", "redis-prefix", "string", "instachat:", "production: prefix of every Redis key",
		func(c *Config, v string) error { c.RedisPrefix = v; return nil },
		func(c *Config) string { return c.RedisPrefix }},
	{"INSTACHAT_KAFKA_BROKERS", "kafka-brokers", "list", "", "production: comma-separated Kafka seed brokers, host:port",
		func(c *Config, v string) error {
			c.KafkaBrokers = nil
			for _, b := range strings.Split(v, ",") {
				if b = strings.TrimSpace(b); b != "" {
					c.KafkaBrokers = append(c.KafkaBrokers, b)
				}
			}
			return nil
		},
		func(c *Config) string { return strings.Join(c.KafkaBrokers, ",") }},
	{"INSTACHAT_KAFKA_TOPIC", "kafka-topic", "string", "instachat.creates",
		"production: topic between dispatchers and workers (dead letters go to TOPIC.dlq)",
		func(c *Config, v string) error { c.KafkaTopic = v; return nil },
		func(c *Config) string { return c.KafkaTopic }},
	{"INSTACHAT_KAFKA_GROUP", "kafka-group", "string", "instachat-workers", "production: the workers' consumer group",
		func(c *Config, v string) error { c.KafkaGroup = v; return nil },
		func(c *Config) string { return c.KafkaGroup }},
	{"INSTACHAT_KAFKA_PARTITIONS", "kafka-partitions", "int", "12",
		"production: partitions when the topic is created; bounds how many workers share the load",
		func(c *Config, v string) error {
			n, err := strconv.ParseInt(v, 10, 32)
			if err != nil || n < 1 {
				return fmt.Errorf("must be a positive integer")
			}
			c.KafkaPartitions = int32(n)
			return nil
		},
		func(c *Config) string { return strconv.Itoa(int(c.KafkaPartitions)) }},
	{"INSTACHAT_KAFKA_REPLICATION", "kafka-replication", "int", "1", "production: replication factor when the topic is created (3 in a real cluster)",
		func(c *Config, v string) error {
			n, err := strconv.ParseInt(v, 10, 16)
			if err != nil || n < 1 {
				return fmt.Errorf("must be a positive integer")
			}
			c.KafkaReplication = int16(n)
			return nil
		},
		func(c *Config) string { return strconv.Itoa(int(c.KafkaReplication)) }},
	{"INSTACHAT_ELASTICSEARCH_URL", "elasticsearch-url", "url", "",
		"production, optional: Elasticsearch for search; without it search scans the chat in MySQL",
		func(c *Config, v string) error { c.ElasticsearchURL = v; return nil },
		func(c *Config) string { return redact(c.ElasticsearchURL) }},
	{"INSTACHAT_ELASTICSEARCH_INDEX", "elasticsearch-index", "string", "instachat-messages", "production: the Elasticsearch index of messages",
		func(c *Config, v string) error { c.ElasticsearchIndex = v; return nil },
		func(c *Config) string { return c.ElasticsearchIndex }},
}

// DefaultConfig returns the configuration with every default applied.
func DefaultConfig() Config {
	var c Config
	for _, o := range Options {
		if err := o.set(&c, o.Default); err != nil {
			panic(fmt.Sprintf("default of %s: %v", o.Env, err)) // a bad default is a programming error
		}
	}
	return c
}

// LoadConfig applies defaults, then the environment, then flags, and
// rejects any value that does not parse, naming the setting, and a
// half-configured topology, naming what is missing.
func LoadConfig(name string, args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage of %s:\n", name)
		PrintFlags(stderr)
	}
	c, problems, err := ParseConfig(fs, args, getenv)
	if err != nil {
		return c, err
	}
	if len(problems) > 0 {
		return c, errors.Join(problems...)
	}
	_, err = c.Production()
	return c, err
}

// ParseConfig applies defaults, then the environment, then the flags in
// args, defining one flag on fs per option. It returns the configuration
// with every value that parsed, and the problems: one error naming each
// setting whose value did not parse (the setting keeps its value from
// before). err is a mistake in the command line itself, such as an unknown
// flag or -help, as fs.Parse reports it. ParseConfig does not check that
// the settings make a topology; Production does.
func ParseConfig(fs *flag.FlagSet, args []string, getenv func(string) string) (c Config, problems []error, err error) {
	c = DefaultConfig()
	for _, o := range Options {
		if v := getenv(o.Env); v != "" {
			if err := o.set(&c, v); err != nil {
				if o.Env == envAdminToken { // never echo a secret
					problems = append(problems, fmt.Errorf("%s: %v", o.Env, err))
				} else {
					problems = append(problems, fmt.Errorf("%s=%q: %v", o.Env, v, err))
				}
			}
		}
	}
	for _, o := range Options {
		fs.Func(o.Flag, o.Usage, func(v string) error {
			if err := o.set(&c, v); err != nil {
				// Collected rather than returned, so that every bad value
				// is named at once, and because the flag package would
				// quote the value, which must not happen to a secret.
				if o.Env == envAdminToken {
					problems = append(problems, fmt.Errorf("-%s: %v", o.Flag, err))
				} else {
					problems = append(problems, fmt.Errorf("-%s %q: %v", o.Flag, v, err))
				}
			}
			return nil
		})
	}
	if err := fs.Parse(args); err != nil {
		return c, problems, err
	}
	if fs.NArg() > 0 {
		return c, problems, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	return c, problems, nil
}

// PrintFlags writes the flags of Options as flag.PrintDefaults would, with
// the kind of value each takes, its environment variable and its default.
func PrintFlags(w io.Writer) {
	for _, o := range Options {
		def := ""
		switch o.Kind {
		case "int", "float", "duration":
			def = ", default " + o.Default
		default:
			if o.Default != "" {
				def = fmt.Sprintf(", default %q", o.Default)
			}
		}
		fmt.Fprintf(w, "  -%s %s\n    \t%s (env %s%s)\n", o.Flag, o.Kind, o.Usage, o.Env, def)
	}
}
