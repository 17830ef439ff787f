// Package elasticsearch keeps the message search index in Elasticsearch 8.
// Index is both the instachat.Indexer that workers feed after the store
// commits and the instachat.SearchEngine behind the API's search: it answers
// with message numbers, and package search loads the rows from the store.
//
// # Matching
//
// The Searcher rule — instachat.MatchesTerm — is built into the mapping
// rather than applied to results afterwards, so paging by offset stays exact:
//
//   - body.ngram indexes every trigram of the body, spaces and punctuation
//     included, lower-cased, each at its own position. A term of
//     instachat.MinSubstringTerm or more characters is a match_phrase on it:
//     its trigrams must sit at consecutive positions, which is exactly "the
//     term is a substring of the body".
//   - body.start indexes, at the start of the body and after every character
//     that is neither a letter nor a digit, the one and the two characters
//     found there, lower-cased. A shorter term is a term query on it, which
//     is exactly "the term starts where a word starts". Words are drawn with
//     the Unicode classes of unicode.IsLetter and unicode.IsDigit; the
//     standard tokenizer would not do, since it keeps "don't" and "foo_bar"
//     whole and splits ideographs apart.
//   - body indexes the words and only ranks: a term that is a whole word
//     scores higher.
//
// # Redelivery
//
// A document's id is its token, chat and number, and its external version
// is UpdatedAt in microseconds. A redelivered batch carrying an older body
// is refused with a version conflict instead of overwriting a newer edit,
// and IndexMessages counts that refusal as success: the index already holds
// that edit or a later one.
//
// # What was verified
//
// Elasticsearch could not run where this package was written. The tests
// replay answers in testdata/ that were written by hand from the documented
// Elasticsearch 8 formats, not captured from a live cluster, and check what
// the package sends through go-elasticsearch (paths, methods, query
// parameters, Content-Type, credentials, the mapping, the bulk lines, the
// query, the delete by query of a deleted chat or application) and how it
// reads the answers (conflicts, item failures, hits, 5xx and its retry,
// refused connections, a server that is not Elasticsearch, a delete by
// query's failures, timeout and version conflicts).
// Whether the analyzers index what this comment says — the Java regular
// expressions of body.start, the positions of the trigrams — has not been
// checked against a live cluster, nor that delete by query removes what
// the recorded answers say; the conformance suites (TestSearcher,
// TestSearchForget) check both when INSTACHAT_TEST_ELASTICSEARCH_URL names
// one.
package elasticsearch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	es "github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/instachat/instachat"
)

// DefaultIndex is the index used when Config.Index is empty.
const DefaultIndex = "instachat-messages"

// requestTimeout bounds one call, retry included, so a cluster that accepts
// connections but never answers stalls a worker for a while, not forever.
const requestTimeout = 30 * time.Second

// The client retries once, after retryBackoff, when the connection fails or
// the answer is 502, 503 or 504: enough to ride out a stale keep-alive
// connection or a node restarting behind a proxy. Its default, three
// retries without a pause, would press on a struggling cluster and delay
// the EUNAVAILABLE that a dead one must answer quickly; the worker's
// redelivery and the API's clients retry more patiently than one request
// can wait. Every request here bears repeating: a repeated bulk write is a
// version conflict, which IndexMessages accepts; the others read, or create
// and delete what the callers accept finding done.
const (
	maxRetries   = 1
	retryBackoff = 100 * time.Millisecond
)

// Config locates the index.
type Config struct {
	// URL of the cluster, like http://localhost:9200. A user and password
	// in it are sent as basic authentication.
	URL string
	// Index is the index name; "" means DefaultIndex.
	Index string
	// Refresh is the refresh parameter of every bulk write: "" leaves
	// visibility to the index's refresh interval, "wait_for" returns once
	// the writes are searchable (tests), "true" forces a refresh.
	Refresh string
	Logger  *slog.Logger // nil means slog.Default()
}

// Index is one Elasticsearch index of messages.
type Index struct {
	client  *es.Client
	name    string
	refresh string
	logger  *slog.Logger
}

var (
	_ instachat.Indexer      = (*Index)(nil)
	_ instachat.SearchEngine = (*Index)(nil)
)

// Open connects to the cluster and creates the index with its mapping if it
// is missing. If it exists, Open checks that its mapping is this package's,
// so that searches never run on fields analyzed some other way.
func Open(ctx context.Context, cfg Config) (*Index, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		// The URL is left out: it may carry a password.
		return nil, errors.New("elasticsearch: the URL must be absolute, like http://localhost:9200")
	}
	switch cfg.Refresh {
	case "", "true", "false", "wait_for":
	default:
		return nil, fmt.Errorf("elasticsearch: Refresh %q must be empty, true, false or wait_for", cfg.Refresh)
	}
	x := &Index{name: cfg.Index, refresh: cfg.Refresh, logger: cfg.Logger}
	if x.name == "" {
		x.name = DefaultIndex
	}
	// The client writes the name into request paths as it is, where these
	// would address another path than the index's.
	if strings.ContainsAny(x.name, "/?#%") {
		return nil, fmt.Errorf("elasticsearch: the index name %q must not hold any of / ? # %%", x.name)
	}
	if x.logger == nil {
		x.logger = slog.Default()
	}
	// The credentials go in Username and Password, and only the address in
	// Addresses, so that the client never has the password in a URL it
	// could show.
	user := u.User.Username()
	password, _ := u.User.Password()
	u.User = nil
	// EnableCompatibilityMode stays off: it labels every body, bulk lines
	// included, application/vnd.elasticsearch+json, for an Elasticsearch 9.
	// (The client also turns it on when ELASTIC_CLIENT_APIVERSIONING is
	// true; Elasticsearch 8 reads both labels, on _bulk too.)
	x.client, err = es.NewClient(es.Config{
		Addresses:  []string{u.String()},
		Username:   user,
		Password:   password,
		MaxRetries: maxRetries,
		RetryBackoff: func(attempt int) time.Duration {
			// The client waits after the last attempt too, for nothing.
			if attempt > maxRetries {
				return 0
			}
			return retryBackoff
		},
	})
	if err != nil {
		return nil, fmt.Errorf("elasticsearch: %w", err)
	}
	if err := x.ensure(ctx); err != nil {
		return nil, err
	}
	return x, nil
}

// ensure creates the index unless it exists, and verifies the mapping of
// one that exists, including one another process created a moment ago.
func (x *Index) ensure(ctx context.Context) error {
	status, err := x.do(ctx, esapi.IndicesExistsRequest{Index: []string{x.name}}, nil)
	if status == http.StatusNotFound {
		if created, err := x.create(ctx); created || err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	var got map[string]struct {
		Mappings map[string]any `json:"mappings"`
	}
	if _, err := x.do(ctx, esapi.IndicesGetMappingRequest{Index: []string{x.name}}, &got); err != nil {
		return err
	}
	// The answer is keyed by the concrete index, which differs from the
	// name when the name is an alias.
	for _, idx := range got {
		if field := mismatch(mappings, idx.Mappings, "mappings"); field != "" {
			return fmt.Errorf("elasticsearch: index %q exists with another mapping (%s differs); delete it or configure another index", x.name, field)
		}
	}
	return nil
}

// create creates the index with its settings and mapping. It reports false,
// and no error, when another process created the index first.
func (x *Index) create(ctx context.Context) (bool, error) {
	def, err := json.Marshal(object{"settings": settings, "mappings": mappings})
	if err != nil {
		return false, err
	}
	_, err = x.do(ctx, esapi.IndicesCreateRequest{Index: x.name, Body: bytes.NewReader(def)}, nil)
	if e := (*answerError)(nil); errors.As(err, &e) && e.Type == "resource_already_exists_exception" {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	x.logger.InfoContext(ctx, "created the search index", "index", x.name)
	return true, nil
}

// Ping reports whether the cluster answers, for health checks.
func (x *Index) Ping(ctx context.Context) error {
	_, err := x.do(ctx, esapi.PingRequest{}, nil)
	return err
}

// DeleteIndex deletes the index; tests use it to clean up. A missing index
// is not an error.
func (x *Index) DeleteIndex(ctx context.Context) error {
	status, err := x.do(ctx, esapi.IndicesDeleteRequest{Index: []string{x.name}}, nil)
	if status == http.StatusNotFound {
		return nil
	}
	return err
}

// do performs req and decodes a 2xx answer into out, if out is not nil.
// It returns the status even with an error, so callers can accept the
// failures they expect.
func (x *Index) do(ctx context.Context, req esapi.Request, out any) (int, error) {
	return x.doAnswer(ctx, req, out, nil)
}

// doAnswer is do, where answered, when not nil, may take an error answer
// that is not Elasticsearch's error object (delete by query reports its
// failures in its usual answer): it returns whether it did and, if so,
// doAnswer returns its error.
func (x *Index) doAnswer(ctx context.Context, req esapi.Request, out any, answered func(status int, data []byte) (bool, error)) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	where := fmt.Sprintf("%T", req) // names the API: esapi.SearchRequest
	res, err := req.Do(ctx, x.client)
	if err != nil {
		// The connection failed, the retry too, or the server is not
		// Elasticsearch: it lacked the product header.
		return 0, unavailable(fmt.Errorf("elasticsearch: %s: %w", where, err))
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return res.StatusCode, unavailable(fmt.Errorf("elasticsearch: %s: reading the answer: %w", where, err))
	}
	if res.IsError() && answered != nil {
		if ok, err := answered(res.StatusCode, data); ok {
			return res.StatusCode, err
		}
	}
	if res.IsError() {
		e := &answerError{Status: res.StatusCode}
		var body struct {
			Error json.RawMessage `json:"error"`
		}
		// The error is an object in every documented answer; anything else
		// (a proxy's page, an old plain-string error) is kept as the reason.
		if json.Unmarshal(data, &body) != nil || json.Unmarshal(body.Error, e) != nil {
			e.Reason = string(bytes.TrimSpace(data))
		}
		return res.StatusCode, e.wrap("elasticsearch: %s", where)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return res.StatusCode, fmt.Errorf("elasticsearch: %s: decoding the answer: %w", where, err)
		}
	}
	return res.StatusCode, nil
}

// answerError is an error Elasticsearch answered, for a whole request or
// one bulk item.
type answerError struct {
	Status int    `json:"-"`
	Type   string `json:"type"`
	Reason string `json:"reason"`
}

func (e *answerError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Status, e.Type, e.Reason)
}

// wrap puts e after a formatted context and marks the statuses that mean
// "not now" — overload (429) and server-side failures (5xx) — unavailable,
// so they reach clients as 503 and are retried; any other status is a
// fault of this package or of the setup.
func (e *answerError) wrap(format string, args ...any) error {
	err := fmt.Errorf(format+": %w", append(args, e)...)
	if e.Status == http.StatusTooManyRequests || e.Status >= 500 {
		return unavailable(err)
	}
	return err
}

// unavailable marks err as the search engine being out of reach, and keeps
// err in the chain for the logs.
func unavailable(err error) error {
	return fmt.Errorf("%w: %w", instachat.Errorf(instachat.EUNAVAILABLE, "search unavailable"), err)
}
