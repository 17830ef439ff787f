package server

import (
	"io"
	"strings"
	"testing"
	"time"
)

func load(t *testing.T, env map[string]string, args ...string) (Config, error) {
	t.Helper()
	return LoadConfig("instachat", args, func(k string) string { return env[k] }, io.Discard)
}

func TestConfigPrecedence(t *testing.T) {
	c, err := load(t, map[string]string{"INSTACHAT_ADDR": ":9000", "INSTACHAT_SHUTDOWN_TIMEOUT": "5s"}, "-addr", ":9001")
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":9001" || c.ShutdownTimeout != 5*time.Second || c.DataDir != "./instachat-data" {
		t.Fatalf("flag over env over default broken: %+v", c)
	}
	if c.Roles != (Roles{API: true, Dispatcher: true, Worker: true}) {
		t.Fatalf("default roles %v", c.Roles)
	}
}

func TestConfigRejectsBadValuesByName(t *testing.T) {
	for env, v := range map[string]string{
		"INSTACHAT_SYNC":             "sometimes",
		"INSTACHAT_MAX_BODY_BYTES":   "-1",
		"INSTACHAT_SHUTDOWN_TIMEOUT": "soon",
		"INSTACHAT_LOG_LEVEL":        "loud",
		"INSTACHAT_ROLES":            "api,janitor",
		"INSTACHAT_KAFKA_PARTITIONS": "0",
	} {
		if _, err := load(t, map[string]string{env: v}); err == nil || !strings.Contains(err.Error(), env) {
			t.Errorf("%s=%s: error %v does not name the setting", env, v, err)
		}
	}
}

func TestHalfConfiguredTopologyRefusesAndNamesWhatIsMissing(t *testing.T) {
	for _, c := range []struct {
		env     map[string]string
		missing []string
	}{
		{map[string]string{"INSTACHAT_KAFKA_BROKERS": "k:9092"}, []string{"INSTACHAT_MYSQL_DSN", "INSTACHAT_REDIS_URL"}},
		{map[string]string{"INSTACHAT_MYSQL_DSN": "root@tcp(db)/x", "INSTACHAT_KAFKA_BROKERS": "k:9092"}, []string{"INSTACHAT_REDIS_URL"}},
		{map[string]string{"INSTACHAT_ELASTICSEARCH_URL": "http://es:9200"},
			[]string{"INSTACHAT_MYSQL_DSN", "INSTACHAT_REDIS_URL", "INSTACHAT_KAFKA_BROKERS"}},
		{map[string]string{"INSTACHAT_ROLES": "worker"}, []string{"production topology"}},
	} {
		_, err := load(t, c.env)
		if err == nil {
			t.Errorf("%v: accepted", c.env)
			continue
		}
		for _, m := range c.missing {
			if !strings.Contains(err.Error(), m) {
				t.Errorf("%v: error %q does not name %s", c.env, err, m)
			}
		}
	}
	c, err := load(t, map[string]string{"INSTACHAT_MYSQL_DSN": "root@tcp(db)/x",
		"INSTACHAT_REDIS_URL": "redis://r:6379/0", "INSTACHAT_KAFKA_BROKERS": "a:9092, b:9092", "INSTACHAT_ROLES": "worker"})
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := c.Production(); !p || len(c.KafkaBrokers) != 2 || c.KafkaBrokers[1] != "b:9092" || c.Roles != (Roles{Worker: true}) {
		t.Fatalf("full production config read as %+v", c)
	}
}

// TestValuesHidePasswords checks what `instachat config` prints.
func TestValuesHidePasswords(t *testing.T) {
	c, err := load(t, map[string]string{
		"INSTACHAT_MYSQL_DSN":     "app:s3cret@tcp(db:3306)/instachat",
		"INSTACHAT_REDIS_URL":     "redis://:hunter2@r:6379/0",
		"INSTACHAT_KAFKA_BROKERS": "k:9092",
	})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for _, o := range Options {
		out.WriteString(o.Env + "=" + o.Value(c) + "\n")
	}
	if s := out.String(); strings.Contains(s, "s3cret") || strings.Contains(s, "hunter2") || !strings.Contains(s, "app:xxxxx@tcp(db:3306)/instachat") {
		t.Fatalf("dump:\n%s", s)
	}
}
