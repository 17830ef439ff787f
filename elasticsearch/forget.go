package elasticsearch

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/instachat/instachat"
)

// forgetBatch is the most documents one delete-by-query request deletes:
// ForgetScope repeats the request until one deletes fewer, so that each
// stays well within requestTimeout however many messages a deleted
// application had.
var forgetBatch = 10000

// deleteByQueryAnswer is the answer of _delete_by_query, run to completion.
type deleteByQueryAnswer struct {
	TimedOut         bool            `json:"timed_out"`
	Total            *int64          `json:"total"` // nil in an answer of another API
	Deleted          *int64          `json:"deleted"`
	VersionConflicts int64           `json:"version_conflicts"`
	Failures         []deleteFailure `json:"failures"`
}

// deleteFailure is one entry of failures: a refused delete carries the
// document's id, its cause and status; a failed search its shard, node and
// reason (and a status since 8.x, sometimes not).
type deleteFailure struct {
	ID     string       `json:"id"`
	Status int          `json:"status"`
	Cause  *answerError `json:"cause"`
	Reason *answerError `json:"reason"`
}

// ForgetScope implements instachat.SearchEngine: it deletes the documents
// of the scope's chat, or of every chat of its application, tombstones
// included, with delete by query — a term query on the token (and the
// chat), the filter every search of the chat applies.
//
// It refreshes the index first: delete by query deletes what a search of
// the index finds, and a search finds only what a refresh made visible, so
// a message indexed a moment before would escape it. conflicts=proceed
// makes a document changed while the deletion ran (an index request
// arriving meanwhile) not stop the rest; it is reported as an error all
// the same, as is any failure or a timeout, so that the reclaim calls
// ForgetScope again and the second pass deletes what the first missed.
// Every request bears repeating: what is deleted already is not found
// again. A missing index holds nothing to forget.
//
// The documents leave the search at once (refresh=true, when Config.Refresh
// asks for visible writes) or at the index's next refresh; their bytes
// leave the disk when Elasticsearch merges the segments that hold them.
func (x *Index) ForgetScope(ctx context.Context, s instachat.Scope) error {
	if s.Token == "" {
		return errors.New("elasticsearch: ForgetScope of a scope without a token")
	}
	filter := []object{{"term": object{"token": s.Token}}}
	if !s.ChatNumbers() {
		filter = append(filter, object{"term": object{"chat": s.Chat}})
	}
	body, err := json.Marshal(object{"query": object{"bool": object{"filter": filter}}})
	if err != nil {
		return err
	}
	_, err = x.do(ctx, esapi.IndicesRefreshRequest{Index: []string{x.name}}, nil)
	if missingIndex(err) {
		x.logger.WarnContext(ctx, "the search index is missing: no documents to erase", "index", x.name)
		return nil
	}
	if err != nil {
		return err
	}
	refresh := x.refresh == "true" || x.refresh == "wait_for" // delete by query has no wait_for
	wait := true
	for {
		var res deleteByQueryAnswer
		decode := func(status int, data []byte) (bool, error) {
			// An answer with failures comes with their highest status (a
			// timeout with 408), in the usual body, not an error object.
			var probe struct {
				Error json.RawMessage `json:"error"`
			}
			if json.Unmarshal(data, &probe) != nil || probe.Error != nil || json.Unmarshal(data, &res) != nil {
				return false, nil
			}
			return true, x.forgetError(s, status, &res)
		}
		req := esapi.DeleteByQueryRequest{
			Index:             []string{x.name},
			Body:              bytes.NewReader(body),
			Conflicts:         "proceed",
			MaxDocs:           &forgetBatch,
			Refresh:           &refresh,
			WaitForCompletion: &wait,
		}
		status, err := x.doAnswer(ctx, req, &res, decode)
		if missingIndex(err) {
			return nil
		}
		if err == nil {
			err = x.forgetError(s, status, &res)
		}
		if err != nil {
			return err
		}
		if *res.Deleted < int64(forgetBatch) {
			return nil
		}
	}
}

// forgetError is the error a delete by query answer holds, or nil: any
// failure, a timeout, and documents changed while it ran, which a repeat
// deletes. Tokens do not appear whole: the error ends in logs.
func (x *Index) forgetError(s instachat.Scope, status int, res *deleteByQueryAnswer) error {
	redact := func(text string) string { return strings.ReplaceAll(text, s.Token, instachat.RedactToken(s.Token)) }
	if res.Total == nil || res.Deleted == nil {
		return fmt.Errorf("elasticsearch: erasing %s: decoding the answer: it lacks total or deleted", describeScope(s))
	}
	switch {
	case len(res.Failures) > 0:
		f := res.Failures[0]
		e := f.Cause
		if e == nil {
			e = f.Reason
		}
		if e == nil {
			e = &answerError{Type: "unknown"}
		}
		e = &answerError{Status: cmp.Or(f.Status, status), Type: e.Type, Reason: redact(e.Reason)}
		return e.wrap("elasticsearch: erasing %s: %d failures, %d of %d documents deleted",
			describeScope(s), len(res.Failures), *res.Deleted, *res.Total)
	case res.TimedOut:
		return unavailable(fmt.Errorf("elasticsearch: erasing %s: timed out after deleting %d of %d documents",
			describeScope(s), *res.Deleted, *res.Total))
	case res.VersionConflicts > 0:
		return unavailable(fmt.Errorf("elasticsearch: erasing %s: %d documents changed while being deleted; %d of %d deleted",
			describeScope(s), res.VersionConflicts, *res.Deleted, *res.Total))
	case status >= http.StatusBadRequest:
		e := &answerError{Status: status, Type: "delete_by_query", Reason: "failed without failures"}
		return e.wrap("elasticsearch: erasing %s", describeScope(s))
	}
	return nil
}

// describeScope names a scope for errors, its token redacted.
func describeScope(s instachat.Scope) string {
	if s.ChatNumbers() {
		return "the documents of application " + instachat.RedactToken(s.Token)
	}
	return fmt.Sprintf("the documents of chat %d of %s", s.Chat, instachat.RedactToken(s.Token))
}

// missingIndex reports whether err is Elasticsearch answering that the
// index does not exist.
func missingIndex(err error) bool {
	e := (*answerError)(nil)
	return errors.As(err, &e) && e.Type == "index_not_found_exception"
}
