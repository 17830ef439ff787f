package server

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Config is everything a process needs to know. Every field has a default,
// an environment variable and a flag that mirrors it; see Options.
type Config struct {
	Addr            string
	DataDir         string
	Sync            string
	MaxBodyBytes    int
	MaxRequestBytes int64
	ShutdownTimeout time.Duration
	LogLevel        string
}

// option is one row of the configuration table.
type option struct {
	env, flag, def, usage string
	set                   func(c *Config, v string) error
	get                   func(c *Config) string
}

// Options is the configuration table: the single place a setting is named,
// defaulted, parsed and documented (the README's table mirrors it).
var Options = []option{
	{"INSTACHAT_ADDR", "addr", ":8080", "address to listen on",
		func(c *Config, v string) error { c.Addr = v; return nil },
		func(c *Config) string { return c.Addr }},
	{"INSTACHAT_DATA_DIR", "data-dir", "./instachat-data", "directory of the embedded database",
		func(c *Config, v string) error { c.DataDir = v; return nil },
		func(c *Config) string { return c.DataDir }},
	{"INSTACHAT_SYNC", "sync", "normal", "embedded durability: normal survives a process crash, full also a power loss (fsync per commit)",
		func(c *Config, v string) error {
			v = strings.ToLower(v)
			if v != "normal" && v != "full" {
				return fmt.Errorf("must be normal or full")
			}
			c.Sync = v
			return nil
		},
		func(c *Config) string { return c.Sync }},
	{"INSTACHAT_MAX_BODY_BYTES", "max-body-bytes", "65536", "largest message body in bytes",
		func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return fmt.Errorf("must be a positive integer")
			}
			c.MaxBodyBytes = n
			return nil
		},
		func(c *Config) string { return strconv.Itoa(c.MaxBodyBytes) }},
	{"INSTACHAT_MAX_REQUEST_BYTES", "max-request-bytes", "0", "largest request body in bytes (0: 4 × max body + 64 KiB, room for JSON escapes)",
		func(c *Config, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return fmt.Errorf("must be a non-negative integer")
			}
			c.MaxRequestBytes = n
			return nil
		},
		func(c *Config) string { return strconv.FormatInt(c.MaxRequestBytes, 10) }},
	{"INSTACHAT_SHUTDOWN_TIMEOUT", "shutdown-timeout", "30s", "how long SIGTERM waits for in-flight requests and queued work",
		func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return fmt.Errorf("must be a positive duration such as 30s")
			}
			c.ShutdownTimeout = d
			return nil
		},
		func(c *Config) string { return c.ShutdownTimeout.String() }},
	{"INSTACHAT_LOG_LEVEL", "log-level", "info", "debug, info, warn or error",
		func(c *Config, v string) error {
			switch strings.ToLower(v) {
			case "debug", "info", "warn", "error":
				c.LogLevel = strings.ToLower(v)
				return nil
			}
			return fmt.Errorf("must be debug, info, warn or error")
		},
		func(c *Config) string { return c.LogLevel }},
}

// DefaultConfig returns the configuration with every default applied.
func DefaultConfig() Config {
	var c Config
	for _, o := range Options {
		if err := o.set(&c, o.def); err != nil {
			panic(fmt.Sprintf("default of %s: %v", o.env, err)) // a bad default is a programming error
		}
	}
	return c
}

// LoadConfig applies defaults, then the environment, then flags, and rejects
// any value that does not parse, naming the setting.
func LoadConfig(name string, args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	c := DefaultConfig()
	for _, o := range Options {
		if v := getenv(o.env); v != "" {
			if err := o.set(&c, v); err != nil {
				return c, fmt.Errorf("%s=%q: %v", o.env, v, err)
			}
		}
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	for _, o := range Options {
		fs.Func(o.flag, o.usage+" (env "+o.env+", default "+o.def+")", func(v string) error { return o.set(&c, v) })
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	return c, nil
}

// Dump writes the effective configuration, one VAR=value per line.
func (c Config) Dump(w io.Writer) {
	for _, o := range Options {
		fmt.Fprintf(w, "%s=%s\n", o.env, o.get(&c))
	}
}
