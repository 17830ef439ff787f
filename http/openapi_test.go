package http

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/instachat/instachat/feed"
	"github.com/instachat/instachat/http/openapitest"
)

// TestOpenAPI holds the document and the mux to each other: every route is
// documented, and every documented operation is a route.
func TestOpenAPI(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openapi, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.0.") {
		t.Errorf("openapi = %q, want 3.0.x", doc.OpenAPI)
	}
	// server mounts /metrics beside the API, on every process; its tests
	// check that it is served.
	routes := append((&Server{API: true, Dispatch: true, Streams: &feed.Streamer{}}).Routes(), "GET /metrics")
	for _, route := range routes {
		method, path, _ := strings.Cut(route, " ")
		if _, ok := doc.Paths[path][strings.ToLower(method)]; !ok {
			t.Errorf("route %s is not in openapi.json", route)
		}
	}
	for path, item := range doc.Paths {
		for method := range item {
			if method == "parameters" {
				continue
			}
			if route := strings.ToUpper(method) + " " + path; !slices.Contains(routes, route) {
				t.Errorf("openapi.json documents %s, which is not a route", route)
			}
		}
	}
}

// TestOpenAPIIsValid holds openapi.json to the OpenAPI 3.0 specification,
// with kin-openapi's validator, examples included.
func TestOpenAPIIsValid(t *testing.T) {
	if _, err := openapitest.Load(openapi); err != nil {
		t.Fatal(err)
	}
}
