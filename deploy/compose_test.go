// Package deploy holds the deployment's configuration files. No Docker
// engine runs where Instachat is built, so docker-compose.yml, the
// Dockerfile and the proxy's nginx.conf are never run here; these tests
// check what can be checked without one: the compose topology's shape, and
// that the proxy sends every operation of the API to a role that serves it.
package deploy

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v4"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/feed"
	instachathttp "github.com/instachat/instachat/http"
)

type compose struct {
	Services map[string]struct {
		Image       string
		Build       any
		Command     []string
		Ports       []string
		Volumes     []string
		Environment map[string]string
		Healthcheck struct{ Test []string }
		Deploy      struct{ Replicas int }
	}
}

func readCompose(t *testing.T) compose {
	t.Helper()
	raw, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.Unmarshal(raw, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return c
}

// TestComposeTopology: one address serves the whole API (the proxy), no
// Instachat service publishes a fixed host port (each may be scaled), each
// has a health check its distroless image can run, and Kafka keeps its log
// on its volume.
func TestComposeTopology(t *testing.T) {
	c := readCompose(t)
	proxy, ok := c.Services["proxy"]
	if !ok || !slices.Contains(proxy.Ports, "8080:8080") || !slices.Contains(proxy.Volumes, "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro") {
		t.Errorf("proxy: %+v, want it publishing 8080 with deploy/nginx.conf mounted", proxy)
	}
	roles := map[string]bool{}
	for name, s := range c.Services {
		if s.Build == nil || slices.Contains(s.Command, "migrate") {
			continue // not an Instachat server
		}
		if len(s.Ports) > 0 {
			t.Errorf("%s publishes %v: a fixed host port stops `--scale %s=2`; the proxy is the one address", name, s.Ports, name)
		}
		if !slices.Equal(s.Healthcheck.Test, []string{"CMD", "/instachat", "healthcheck"}) {
			t.Errorf("%s: health check %v, want the binary's own (distroless has no curl)", name, s.Healthcheck.Test)
		}
		roles[s.Environment["INSTACHAT_ROLES"]] = true
		if s.Environment["INSTACHAT_ROLES"] != name {
			t.Errorf("service %s plays INSTACHAT_ROLES=%q: the proxy reaches a role by its service name", name, s.Environment["INSTACHAT_ROLES"])
		}
	}
	for _, role := range []string{"api", "dispatcher", "worker"} {
		if !roles[role] {
			t.Errorf("no service plays %s", role)
		}
	}
	kafka := c.Services["kafka"]
	dir := kafka.Environment["KAFKA_LOG_DIRS"]
	if dir == "" || !slices.Contains(kafka.Volumes, "kafka:"+dir) {
		t.Errorf("kafka: KAFKA_LOG_DIRS %q, volumes %v; want the log directory on the volume", dir, kafka.Volumes)
	}
}

// TestDockerfileDataDir: the image's INSTACHAT_DATA_DIR exists in the image
// and belongs to the user it runs as, for the embedded default to create its
// database; the build context leaves out the repository and data.
func TestDockerfileDataDir(t *testing.T) {
	raw, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(raw)
	m := regexp.MustCompile(`(?m)^FROM \S+:(nonroot)$`).FindStringSubmatch(df)
	data := regexp.MustCompile(`INSTACHAT_DATA_DIR=(\S+)`).FindStringSubmatch(df)
	if m == nil || data == nil {
		t.Fatalf("Dockerfile: want a nonroot runtime image and INSTACHAT_DATA_DIR")
	}
	// The directory is made in the build stage under a tree copied onto
	// the root, so that COPY --chown applies to the directory itself.
	tree := regexp.MustCompile(`(?m)^RUN mkdir -p (\S+)` + regexp.QuoteMeta(data[1]) + `$`).FindStringSubmatch(df)
	if tree == nil || !regexp.MustCompile(`(?m)^COPY --from=build --chown=nonroot:nonroot `+regexp.QuoteMeta(tree[1])+`/ /$`).MatchString(df) {
		t.Errorf("Dockerfile: %s is not made in the build stage and copied into the image owned by nonroot", data[1])
	}
	if !strings.Contains(df, `HEALTHCHECK`) || !strings.Contains(df, `["/instachat", "healthcheck"]`) {
		t.Error("Dockerfile: no HEALTHCHECK running instachat healthcheck")
	}
	ignore, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".git", "instachat-data"} {
		if !slices.Contains(strings.Split(string(ignore), "\n"), want) {
			t.Errorf(".dockerignore lacks %s", want)
		}
	}
}

// nginxRoute is the proxy's choice of role for a request, read from the
// map of deploy/nginx.conf: its regular expressions (plain enough for
// RE2) over "METHOD path", and the default.
type nginxRoute struct {
	rules []struct {
		re   *regexp.Regexp
		role string
	}
	def string
}

func readNginx(t *testing.T) nginxRoute {
	t.Helper()
	raw, err := os.ReadFile("nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile(`(?s)map "\$request_method \$uri" \$instachat_role \{(.*?)\}`).FindSubmatch(raw)
	if block == nil {
		t.Fatal("nginx.conf: no map of $request_method $uri to $instachat_role")
	}
	var r nginxRoute
	for _, line := range strings.Split(string(block[1]), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "default" {
			r.def = strings.TrimSuffix(f[1], ";")
		} else if m := regexp.MustCompile(`^\s*"~(.+)"\s+(\w+);$`).FindStringSubmatch(line); m != nil {
			r.rules = append(r.rules, struct {
				re   *regexp.Regexp
				role string
			}{regexp.MustCompile(m[1]), m[2]})
		} else if strings.TrimSpace(line) != "" {
			t.Fatalf("nginx.conf: map line %q not understood", line)
		}
	}
	if !strings.Contains(string(raw), "proxy_pass http://$instachat_role:8080;") {
		t.Fatal("nginx.conf: proxy_pass does not go to the role's service")
	}
	return r
}

func (r nginxRoute) role(method, path string) string {
	for _, rule := range r.rules {
		if rule.re.MatchString(method + " " + path) {
			return rule.role
		}
	}
	return r.def
}

// TestProxyRoutesEveryOperation takes every operation of http/openapi.json
// to the role the proxy picks, and checks that a process playing only that
// role mounts a route for it (http.Server.Routes), so that none is
// answered 421 (another role's), 404 or 405 behind the proxy.
func TestProxyRoutesEveryOperation(t *testing.T) {
	route := readNginx(t)
	fronts := map[string]*http.ServeMux{}
	// The api role streams events where the deployment has a broker.
	for role, s := range map[string]*instachathttp.Server{"api": {API: true, Streams: &feed.Streamer{}}, "dispatcher": {Dispatch: true}} {
		mux := http.NewServeMux()
		for _, pattern := range append(s.Routes(), "GET /metrics") { // /metrics: mounted beside the API by every process
			mux.Handle(pattern, http.NotFoundHandler())
		}
		fronts[role] = mux
	}
	raw, err := os.ReadFile("../http/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	used := map[string]int{}
	concrete := strings.NewReplacer("{token}", instachat.NewToken(), "{chat}", "3", "{message}", "7")
	for template, ops := range doc.Paths {
		for op := range ops {
			method := strings.ToUpper(op)
			if !slices.Contains([]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}, method) {
				continue // parameters, summary
			}
			path := concrete.Replace(template)
			role := route.role(method, path)
			used[role]++
			front, ok := fronts[role]
			if !ok {
				t.Errorf("%s %s goes to %q, no role of the API", method, template, role)
				continue
			}
			if _, pattern := front.Handler(httptest.NewRequest(method, path, nil)); pattern == "" {
				t.Errorf("%s %s goes to %s, which does not serve it", method, template, role)
			}
		}
	}
	if used["dispatcher"] != 2 {
		t.Errorf("%d operations go to the dispatchers, want 2 (creates of chats and messages)", used["dispatcher"])
	}
	t.Logf("operations by role: %v", used)
}

// TestProxyAnswersInTheAPIShape: what nginx answers itself, a body over
// its limit (413) and a role with no process up (502, 503, 504, answered
// 503), has the API's JSON error shape, with Retry-After for 503.
func TestProxyAnswersInTheAPIShape(t *testing.T) {
	raw, err := os.ReadFile("nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	conf := string(raw)
	for _, c := range []struct{ pages, location, status, code string }{
		{"413", "@too_large", "413", instachat.ETOOLARGE},
		{"502 503 504", "@unavailable", "503", instachat.EUNAVAILABLE},
	} {
		if !strings.Contains(conf, "error_page "+c.pages+" = "+c.location+";") {
			t.Errorf("nginx.conf: no error_page %s to %s", c.pages, c.location)
			continue
		}
		block := regexp.MustCompile(`(?s)location ` + c.location + ` \{(.*?)\n        \}`).FindStringSubmatch(conf)
		if block == nil {
			t.Errorf("nginx.conf: no location %s", c.location)
			continue
		}
		m := regexp.MustCompile(`return (\d+) '(.*)\\n';`).FindStringSubmatch(block[1])
		var body struct {
			Error struct{ Code, Message string }
		}
		if m == nil || m[1] != c.status || json.Unmarshal([]byte(m[2]), &body) != nil || body.Error.Code != c.code || body.Error.Message == "" ||
			!strings.Contains(block[1], "default_type application/json;") {
			t.Errorf("nginx.conf: location %s answers %q, want %s with a JSON error %s", c.location, block[1], c.status, c.code)
		}
		if c.status == "503" && !strings.Contains(block[1], "add_header Retry-After 1 always;") {
			t.Errorf("nginx.conf: location %s sets no Retry-After", c.location)
		}
	}
}
