// Package openapitest holds live HTTP exchanges to the API's OpenAPI
// document, for tests: Transport validates every request and its answer
// with kin-openapi's openapi3filter, and fails the test on a mismatch. It
// is a package of its own so that the validator stays out of the binary.
package openapitest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// Load parses doc and validates it as an OpenAPI 3.0 document, with every
// example checked against its schema.
func Load(doc []byte) (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	t, err := loader.LoadFromData(doc)
	if err != nil {
		return nil, fmt.Errorf("openapi.json does not load: %w", err)
	}
	if err := t.Validate(loader.Context, openapi3.EnableExamplesValidation()); err != nil {
		return nil, fmt.Errorf("openapi.json is not a valid OpenAPI document: %w", err)
	}
	var tree any
	if err := json.Unmarshal(doc, &tree); err != nil {
		return nil, err
	}
	if err := requiredLists(tree, "#"); err != nil {
		return nil, err
	}
	return t, nil
}

// requiredLists checks the one rule of OpenAPI 3.0 that kin-openapi lets
// pass: a schema's "required" list, if present, has at least one name, each
// once (JSON Schema Wright-00, which OpenAPI 3.0 schemas follow, §5.15; the
// official OpenAPI 3.0 schema says minItems 1, uniqueItems). Elsewhere
// "required" is a boolean, which this leaves alone.
func requiredLists(v any, at string) error {
	switch v := v.(type) {
	case map[string]any:
		if list, ok := v["required"].([]any); ok {
			seen := map[any]bool{}
			for _, name := range list {
				if seen[name] {
					return fmt.Errorf("openapi.json %s/required names %v twice", at, name)
				}
				seen[name] = true
			}
			if len(list) == 0 {
				return fmt.Errorf("openapi.json %s/required is an empty list, which OpenAPI 3.0 forbids: leave it out", at)
			}
		}
		for k, x := range v {
			if err := requiredLists(x, at+"/"+k); err != nil {
				return err
			}
		}
	case []any:
		for i, x := range v {
			if err := requiredLists(x, fmt.Sprintf("%s/%d", at, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// routers holds each document's router, parsed once per process.
var routersByDoc sync.Map // string(doc) → *loaded

type loaded struct {
	once   sync.Once
	router routers.Router
	err    error
}

// router returns the router of doc, parsed once per document per process.
func router(doc []byte) (routers.Router, error) {
	v, _ := routersByDoc.LoadOrStore(string(doc), &loaded{})
	l := v.(*loaded)
	l.once.Do(func() {
		t, err := Load(doc)
		if err != nil {
			l.err = err
			return
		}
		l.router, l.err = legacy.NewRouter(t)
	})
	return l.router, l.err
}

// Transport returns a RoundTripper that sends through base (nil: the
// default transport) and checks each exchange against doc:
//
//   - a request the document describes must validate, and its answer must
//     have a documented status, headers and body;
//   - a request the document says is invalid (a bad parameter or body, no
//     admin token) must be refused with a documented 4xx, never served;
//   - a request to a path or method the document does not have must be
//     answered 404 or 405 in the API's JSON error shape.
//
// A mismatch fails t (with Errorf, so it may be called from any goroutine
// while the test runs).
func Transport(t testing.TB, doc []byte, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	r, err := router(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &transport{t: t, base: base, router: r}
}

type transport struct {
	t      testing.TB
	base   http.RoundTripper
	router routers.Router
}

func (tr *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil && req.Body != http.NoBody {
		var err error
		if reqBody, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(reqBody)), nil }
	}
	res, err := tr.base.RoundTrip(req)
	if err != nil {
		return res, err
	}
	resBody, err := io.ReadAll(res.Body)
	res.Body.Close()
	res.Body = io.NopCloser(bytes.NewReader(resBody))
	if err != nil {
		// The exchange broke off: nothing whole to check.
		return res, nil
	}
	if problem := tr.check(req, reqBody, res, resBody); problem != "" {
		tr.t.Errorf("openapi.json disagrees with %s %s → %d: %s\nrequest body: %.300q\nanswer: %.600q",
			req.Method, req.URL.RequestURI(), res.StatusCode, problem, reqBody, resBody)
	}
	return res, nil
}

// check returns what is wrong with the exchange, "" if nothing.
func (tr *transport) check(req *http.Request, reqBody []byte, res *http.Response, resBody []byte) string {
	find := req
	if req.Method == http.MethodHead { // served with GET; the document lists GET
		find = req.Clone(req.Context())
		find.Method = http.MethodGet
	}
	route, params, err := tr.router.FindRoute(find)
	if err == nil && slices.Contains(slices.Collect(maps.Values(params)), "") {
		// The legacy router lets a path parameter match nothing, so that
		// DELETE /api/v1/applications finds DELETE …/{token}: no request
		// the document describes has an empty path parameter.
		err = fmt.Errorf("no operation for %s %s", find.Method, find.URL.Path)
	}
	if err != nil {
		// Not in the document: the server must not serve it either.
		if res.StatusCode != http.StatusNotFound && res.StatusCode != http.StatusMethodNotAllowed {
			return fmt.Sprintf("the document has no such operation (%v), yet the answer is not 404 or 405", err)
		}
		if !isJSONError(res, resBody) {
			return "a 404 or 405 outside the document is not the JSON error shape"
		}
		return ""
	}
	// The request as the validator sees it, with its own copy of the body.
	vreq := req.Clone(context.Background())
	vreq.Body = io.NopCloser(bytes.NewReader(reqBody))
	if len(reqBody) > 0 && vreq.Header.Get("Content-Type") == "" {
		// The server reads a body without a Content-Type as JSON, as the
		// document's description says; OpenAPI has no way to write it.
		vreq.Header.Set("Content-Type", "application/json")
	}
	in := &openapi3filter.RequestValidationInput{
		Request:    vreq,
		PathParams: params,
		Route:      route,
		Options: &openapi3filter.Options{
			MultiError:            true,
			IncludeResponseStatus: true,
			AuthenticationFunc:    bearerPresent,
		},
	}
	reqErr := openapi3filter.ValidateRequest(context.Background(), in)
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 res.StatusCode,
		Header:                 res.Header,
		Options:                in.Options,
	}
	out.SetBodyBytes(resBody)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		return "the answer does not match: " + err.Error()
	}
	if reqErr != nil && (res.StatusCode < 400 || res.StatusCode > 499) {
		return "the document says the request is invalid (" + reqErr.Error() + "), yet it was not refused with a 4xx"
	}
	return ""
}

// bearerPresent accepts a security requirement when the request carries a
// Bearer credential: whether it is the right one is the server's to say,
// and the document's 401 answer covers that.
func bearerPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	scheme, _, ok := strings.Cut(in.RequestValidationInput.Request.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return fmt.Errorf("no Bearer credential for %s", in.SecuritySchemeName)
	}
	return nil
}

// isJSONError reports whether the answer is {"error":{"code","message"}}.
func isJSONError(res *http.Response, body []byte) bool {
	if !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		return false
	}
	var v struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	return json.Unmarshal(body, &v) == nil && v.Error != nil && v.Error.Code != "" && v.Error.Message != ""
}
