package elasticsearch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/instachat/instachat"
)

// document is a message as indexed. Times are fixed-width microsecond
// strings in UTC: the precision every store keeps. Searches read none of it
// back (the store holds the rows); it is what the mapping indexes.
type document struct {
	Token     string `json:"token"`
	Chat      int64  `json:"chat"`
	Number    int64  `json:"number"`
	Body      string `json:"body"`
	CreatedAt string `json:"created_at"`
	UpdatedAt string `json:"updated_at"`
}

const timeLayout = "2006-01-02T15:04:05.000000Z07:00"

func newDocument(m *instachat.Message) document {
	return document{Token: m.Token, Chat: m.Chat, Number: m.Number, Body: m.Body,
		CreatedAt: m.CreatedAt.UTC().Format(timeLayout), UpdatedAt: m.UpdatedAt.UTC().Format(timeLayout)}
}

// documentID names a message's document. The token is escaped so that no
// token, whatever it holds, makes two messages share an id.
func documentID(m *instachat.Message) string {
	return url.PathEscape(m.Token) + "/" + strconv.FormatInt(m.Chat, 10) + "/" + strconv.FormatInt(m.Number, 10)
}

// redactID shortens the token in a document id, for errors that end in
// logs: tokens are the only credential an application has.
func redactID(id string) string {
	token, rest, _ := strings.Cut(id, "/")
	return instachat.RedactToken(token) + "/" + rest
}

// bulkItem is the outcome of one action of a bulk request.
type bulkItem struct {
	ID     string       `json:"_id"`
	Status int          `json:"status"`
	Error  *answerError `json:"error"`
}

// IndexMessages inserts or replaces the messages in one bulk request. A
// message whose document already holds the same or a later UpdatedAt is
// left alone and counts as indexed. Any other refused message fails the
// call, so the worker delivers the batch again; an unreachable or
// overloaded cluster is EUNAVAILABLE.
// DeleteMessages implements instachat.Indexer. A deleted message's
// document is replaced by its tombstone — no body, versioned by the
// deletion's time like any edit — rather than deleted: Elasticsearch
// forgets a deleted document's version after index.gc_deletes (60 s), and an
// index request arriving later with the message's body and an older version
// would bring it back; a tombstone refuses it with a conflict for good. The
// erased body leaves the disk when its segment merges.
func (x *Index) DeleteMessages(ctx context.Context, msgs []*instachat.Message) error {
	tombstones := make([]*instachat.Message, len(msgs))
	for i, m := range msgs {
		t := *m
		t.Body = ""
		if m.DeletedAt != nil {
			t.UpdatedAt = *m.DeletedAt
		}
		tombstones[i] = &t
	}
	return x.IndexMessages(ctx, tombstones)
}

func (x *Index) IndexMessages(ctx context.Context, msgs []*instachat.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	type meta struct {
		ID          string `json:"_id"`
		Version     int64  `json:"version"`
		VersionType string `json:"version_type"`
	}
	var body bytes.Buffer
	enc := json.NewEncoder(&body) // every Encode ends a line, as NDJSON wants
	for _, m := range msgs {
		action := map[string]meta{"index": {ID: documentID(m), Version: m.UpdatedAt.UnixMicro(), VersionType: "external"}}
		if err := errors.Join(enc.Encode(action), enc.Encode(newDocument(m))); err != nil {
			return err
		}
	}
	req := esapi.BulkRequest{
		Index:   x.name,
		Body:    &body,
		Refresh: x.refresh,
		// esapi labels every body application/json; a bulk body is NDJSON.
		Header: http.Header{"Content-Type": {"application/x-ndjson"}},
	}
	var res struct {
		Errors bool                  `json:"errors"`
		Items  []map[string]bulkItem `json:"items"` // keyed by the action
	}
	if _, err := x.do(ctx, req, &res); err != nil || !res.Errors {
		return err
	}
	var stale, failed int
	var first *bulkItem
	for _, item := range res.Items {
		for _, r := range item {
			switch {
			case r.Error == nil:
			case r.Status == http.StatusConflict:
				stale++
			default:
				if failed++; first == nil {
					first = &r
				}
			}
		}
	}
	if stale > 0 {
		x.logger.DebugContext(ctx, "the search index already held later edits", "index", x.name, "messages", stale)
	}
	if first != nil {
		first.Error.Status = first.Status
		// Elasticsearch quotes the document id, token and all, in its
		// reason; the error ends in logs, where tokens never appear whole.
		if token, _, ok := strings.Cut(first.ID, "/"); ok {
			first.Error.Reason = strings.ReplaceAll(first.Error.Reason, token, instachat.RedactToken(token))
		}
		return first.Error.wrap("elasticsearch: %d of %d messages not indexed; the first is document %s", failed, len(msgs), redactID(first.ID))
	}
	return nil
}

// maxResultWindow is Elasticsearch's default index.max_result_window: it
// refuses a search whose offset plus limit goes beyond, so results end there.
const maxResultWindow = 10000

// SearchMessageNumbers implements instachat.SearchEngine: the numbers of the
// chat's messages matching every term, best match first, with their scores.
// The documents' bodies are not fetched (package search loads the rows from
// the store), so a document not yet reindexed after an edit can only be
// found by its old text, never shown with it. An unreachable or overloaded
// cluster is EUNAVAILABLE.
func (x *Index) SearchMessageNumbers(ctx context.Context, q instachat.SearchQuery) ([]instachat.SearchHit, error) {
	size := min(q.Limit, maxResultWindow-q.Offset)
	if size <= 0 {
		return []instachat.SearchHit{}, nil
	}
	body, err := json.Marshal(searchBody(q, size))
	if err != nil {
		return nil, err
	}
	var res struct {
		Hits struct {
			Hits []struct {
				ID string `json:"_id"`
				// Sort holds the values the hit was sorted by: its score
				// and its number (see searchBody).
				Sort []json.Number `json:"sort"`
			} `json:"hits"`
		} `json:"hits"`
	}
	if _, err := x.do(ctx, esapi.SearchRequest{Index: []string{x.name}, Body: bytes.NewReader(body)}, &res); err != nil {
		return nil, err
	}
	hits := make([]instachat.SearchHit, len(res.Hits.Hits))
	for i, h := range res.Hits.Hits {
		if len(h.Sort) != 2 {
			return nil, fmt.Errorf("elasticsearch: hit %s has sort values %v, want its score and number", redactID(h.ID), h.Sort)
		}
		score, err1 := h.Sort[0].Float64()
		number, err2 := h.Sort[1].Int64()
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("elasticsearch: hit %s: %w", redactID(h.ID), err)
		}
		hits[i] = instachat.SearchHit{Number: number, Score: score}
	}
	return hits, nil
}

// searchBody filters to the chat, requires one clause per term (see the
// package documentation for why each matches as MatchesTerm does), ranks
// whole-word matches higher, and breaks ties by number so that successive
// pages cut one stable order. A hit carries its sort values, score and
// number, and no _source.
func searchBody(q instachat.SearchQuery, size int) object {
	must := make([]object, len(q.Terms))
	should := make([]object, len(q.Terms))
	for i, t := range q.Terms {
		if utf8.RuneCountInString(t) >= instachat.MinSubstringTerm {
			must[i] = object{"match_phrase": object{"body.ngram": t}}
		} else {
			must[i] = object{"term": object{"body.start": t}}
		}
		should[i] = object{"term": object{"body": t}}
	}
	return object{
		"query": object{"bool": object{
			"filter": []object{{"term": object{"token": q.Token}}, {"term": object{"chat": q.Chat}}},
			"must":   must,
			"should": should,
		}},
		"sort":             []object{{"_score": "desc"}, {"number": "asc"}},
		"_source":          false,
		"from":             q.Offset,
		"size":             size,
		"track_total_hits": false,
	}
}
