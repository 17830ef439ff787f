package http

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/instachat/instachat"
)

// Client calls the Instachat API, through the same interfaces as the rest
// of the code: it is an instachat.Creator and an instachat.Searcher, and it
// implements the read side of instachat.Store (StoreReads) with the
// Store's own signatures, so a conformance suite can run through the API.
// Renames and edits take no time: the server stamps them.
//
// Error answers come back as *instachat.Error decoded from the API's error
// JSON, so callers test them with instachat.ErrorCode, and errors.Is finds
// the domain's not-found errors, as they would a backend's.
type Client struct {
	// AdminToken, when set, goes as "Authorization: Bearer" with every
	// request; listing every application needs it.
	AdminToken string

	base string
	hc   *http.Client
}

// StoreReads are the methods of instachat.Store that the API serves as
// they are. Client implements them.
type StoreReads interface {
	FindApplication(ctx context.Context, token string) (*instachat.Application, error)
	ListApplications(ctx context.Context, after string, limit int) ([]*instachat.Application, error)
	FindChat(ctx context.Context, token string, number int64) (*instachat.Chat, error)
	ListChats(ctx context.Context, token string, after int64, limit int) ([]*instachat.Chat, error)
	FindMessage(ctx context.Context, token string, chat, number int64) (*instachat.Message, error)
	ListMessages(ctx context.Context, token string, chat int64, after int64, limit int) ([]*instachat.Message, error)
	instachat.Feeds
}

var (
	_ StoreReads         = (*Client)(nil)
	_ StoreReads         = instachat.Store(nil) // the same signatures as the Store's
	_ instachat.Creator  = (*Client)(nil)
	_ instachat.Searcher = (*Client)(nil)
)

// NewClient returns a client of the server at baseURL (scheme and host,
// e.g. "http://localhost:8080"). A nil hc means http.DefaultClient.
func NewClient(baseURL string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimSuffix(baseURL, "/") + "/api/v1", hc: hc}
}

// CreateApplication creates an application; the server issues its token.
func (c *Client) CreateApplication(ctx context.Context, name string) (*instachat.Application, error) {
	var app instachat.Application
	if _, _, err := c.Do(ctx, http.MethodPost, "/applications", nameRequest{&name}, &app); err != nil {
		return nil, err
	}
	return &app, nil
}

// FindApplication reads an application.
func (c *Client) FindApplication(ctx context.Context, token string) (*instachat.Application, error) {
	var app instachat.Application
	if _, _, err := c.Do(ctx, http.MethodGet, AppPath(token), nil, &app); err != nil {
		return nil, err
	}
	return &app, nil
}

// ListApplications lists up to limit applications after the one whose token
// is after ("" for the first), in creation order; it needs AdminToken.
func (c *Client) ListApplications(ctx context.Context, after string, limit int) ([]*instachat.Application, error) {
	cursor := ""
	if after != "" {
		cursor = instachat.EncodeTokenCursor(after)
	}
	return fill[instachat.Application](c, ctx, "/applications", url.Values{}, cursor, limit, nil)
}

// UpdateApplication renames an application.
func (c *Client) UpdateApplication(ctx context.Context, token, name string) (*instachat.Application, error) {
	var app instachat.Application
	if _, _, err := c.Do(ctx, http.MethodPatch, AppPath(token), nameRequest{&name}, &app); err != nil {
		return nil, err
	}
	return &app, nil
}

// CreateChat creates a chat of the application, with the Idempotency-Key
// key unless it is "". Where the server answers 202 (the Kafka topology)
// the chat is stored shortly after the answer.
func (c *Client) CreateChat(ctx context.Context, token, name, key string) (*instachat.Chat, bool, error) {
	var ch instachat.Chat
	_, h, err := c.send(ctx, http.MethodPost, AppPath(token)+"/chats", nameRequest{&name}, key, &ch)
	if err != nil {
		return nil, false, err
	}
	return fillChat(&ch, token), h.Get("Idempotent-Replayed") == "true", nil
}

// FindChat reads a chat.
func (c *Client) FindChat(ctx context.Context, token string, number int64) (*instachat.Chat, error) {
	var ch instachat.Chat
	if _, _, err := c.Do(ctx, http.MethodGet, ChatPath(token, number), nil, &ch); err != nil {
		return nil, err
	}
	return fillChat(&ch, token), nil
}

// ListChats lists up to limit chats of the application numbered above
// after, in number order.
func (c *Client) ListChats(ctx context.Context, token string, after int64, limit int) ([]*instachat.Chat, error) {
	return fill(c, ctx, AppPath(token)+"/chats", url.Values{}, numberCursor(after), limit,
		func(ch *instachat.Chat) { fillChat(ch, token) })
}

// UpdateChat renames a chat.
func (c *Client) UpdateChat(ctx context.Context, token string, number int64, name string) (*instachat.Chat, error) {
	var ch instachat.Chat
	if _, _, err := c.Do(ctx, http.MethodPatch, ChatPath(token, number), nameRequest{&name}, &ch); err != nil {
		return nil, err
	}
	return fillChat(&ch, token), nil
}

// CreateMessage creates a message of the chat; key works as in CreateChat.
func (c *Client) CreateMessage(ctx context.Context, token string, chat int64, body, key string) (*instachat.Message, bool, error) {
	var m instachat.Message
	_, h, err := c.send(ctx, http.MethodPost, ChatPath(token, chat)+"/messages", bodyRequest{&body}, key, &m)
	if err != nil {
		return nil, false, err
	}
	return fillMessage(&m, token, chat), h.Get("Idempotent-Replayed") == "true", nil
}

// FindMessage reads a message.
func (c *Client) FindMessage(ctx context.Context, token string, chat, number int64) (*instachat.Message, error) {
	var m instachat.Message
	if _, _, err := c.Do(ctx, http.MethodGet, MessagePath(token, chat, number), nil, &m); err != nil {
		return nil, err
	}
	return fillMessage(&m, token, chat), nil
}

// ListMessages lists up to limit messages of the chat numbered above after,
// in number order.
func (c *Client) ListMessages(ctx context.Context, token string, chat int64, after int64, limit int) ([]*instachat.Message, error) {
	return fill(c, ctx, ChatPath(token, chat)+"/messages", url.Values{}, numberCursor(after), limit,
		func(m *instachat.Message) { fillMessage(m, token, chat) })
}

// UpdateMessage replaces the body of a message.
func (c *Client) UpdateMessage(ctx context.Context, token string, chat, number int64, body string) (*instachat.Message, error) {
	var m instachat.Message
	if _, _, err := c.Do(ctx, http.MethodPatch, MessagePath(token, chat, number), bodyRequest{&body}, &m); err != nil {
		return nil, err
	}
	return fillMessage(&m, token, chat), nil
}

// DeleteMessage deletes a message.
func (c *Client) DeleteMessage(ctx context.Context, token string, chat, number int64) error {
	_, _, err := c.Do(ctx, http.MethodDelete, MessagePath(token, chat, number), nil, nil)
	return err
}

// DeleteChat deletes a chat and everything in it.
func (c *Client) DeleteChat(ctx context.Context, token string, chat int64) error {
	_, _, err := c.Do(ctx, http.MethodDelete, ChatPath(token, chat), nil, nil)
	return err
}

// DeleteApplication deletes an application and everything under it.
func (c *Client) DeleteApplication(ctx context.Context, token string) error {
	_, _, err := c.Do(ctx, http.MethodDelete, AppPath(token), nil, nil)
	return err
}

// SearchMessages implements instachat.Searcher: the page (q.Offset,
// q.Limit) of the chat's matches of q.Terms, best first.
func (c *Client) SearchMessages(ctx context.Context, q instachat.SearchQuery) ([]*instachat.Message, error) {
	query := url.Values{"q": {strings.Join(q.Terms, " ")}}
	return fill(c, ctx, ChatPath(q.Token, q.Chat)+"/messages/search", query, numberCursor(int64(q.Offset)), q.Limit,
		func(m *instachat.Message) { fillMessage(m, q.Token, q.Chat) })
}

// ListChanges implements instachat.Feeds: one page of the topic's changes.
// The events' rows carry the token and chat their topic names, and the
// revision of their event.
func (c *Client) ListChanges(ctx context.Context, q instachat.ChangesQuery) (*instachat.ChangesPage, error) {
	path := AppPath(q.Topic.Token) + "/changes"
	if q.Topic.Chat != 0 {
		path = ChatPath(q.Topic.Token, q.Topic.Chat) + "/changes"
	}
	query := url.Values{"after": {strconv.FormatInt(q.After, 10)}, "limit": {strconv.Itoa(q.Limit)}}
	if q.Cursor != 0 {
		query.Set("cursor", instachat.EncodeCursor(q.Cursor))
	}
	var p changesPage
	if _, _, err := c.Do(ctx, http.MethodGet, path+"?"+query.Encode(), nil, &p); err != nil {
		return nil, err
	}
	for i := range p.Data {
		e := &p.Data[i]
		if e.Message != nil {
			fillMessage(e.Message, q.Topic.Token, q.Topic.Chat)
			e.Message.Revision = e.Revision
		}
		if e.Chat != nil {
			fillChat(e.Chat, q.Topic.Token)
			e.Chat.AppRevision = e.Revision
		}
	}
	return &instachat.ChangesPage{Events: p.Data, Revision: p.Revision, More: p.NextCursor != nil}, nil
}

// AllMessages walks every page of a chat's messages, in number order.
func (c *Client) AllMessages(ctx context.Context, token string, chat int64) ([]*instachat.Message, error) {
	var all []*instachat.Message
	for after := int64(0); ; {
		page, err := c.ListMessages(ctx, token, chat, after, maxLimit)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if len(page) < maxLimit {
			return all, nil
		}
		after = page[len(page)-1].Number
	}
}

// fillChat and fillMessage set what the JSON leaves out because the URL
// already says it.
func fillChat(ch *instachat.Chat, token string) *instachat.Chat {
	ch.Token = token
	return ch
}

func fillMessage(m *instachat.Message, token string, chat int64) *instachat.Message {
	m.Token, m.Chat = token, chat
	return m
}

// AppPath, ChatPath and MessagePath are the paths of a resource under
// /api/v1, for Do.
func AppPath(token string) string { return "/applications/" + url.PathEscape(token) }

// ChatPath is the path of a chat under /api/v1.
func ChatPath(token string, chat int64) string {
	return AppPath(token) + "/chats/" + strconv.FormatInt(chat, 10)
}

// MessagePath is the path of a message under /api/v1.
func MessagePath(token string, chat, number int64) string {
	return ChatPath(token, chat) + "/messages/" + strconv.FormatInt(number, 10)
}

// numberCursor is the cursor that resumes after n (a number, or a search
// offset); "" for 0, the first page.
func numberCursor(n int64) string {
	if n == 0 {
		return ""
	}
	return instachat.EncodeCursor(n)
}

// fill reads pages of a list from cursor until it holds limit items or the
// list ends, so that a short answer means the end, as from a Store: a page
// holds at most maxLimit items, and ends early at the server's bound on its
// bytes. fix, when set, completes each item.
func fill[T any](c *Client, ctx context.Context, path string, q url.Values, cursor string, limit int, fix func(*T)) ([]*T, error) {
	all := []*T{}
	for {
		n := limit - len(all)
		if limit > 0 {
			n = min(n, maxLimit)
		}
		q.Set("limit", strconv.Itoa(n))
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var p page[*T]
		if _, _, err := c.Do(ctx, http.MethodGet, path+"?"+q.Encode(), nil, &p); err != nil {
			return nil, err
		}
		for _, v := range p.Data {
			if fix != nil {
				fix(v)
			}
		}
		all = append(all, p.Data...)
		// A page without items would not move the cursor on.
		if p.NextCursor == nil || len(all) >= limit || len(p.Data) == 0 {
			return all, nil
		}
		cursor = *p.NextCursor
	}
}

// Do sends one request to path under /api/v1, with in as its JSON body
// when not nil, and decodes a 2xx answer into out (when not nil). It
// returns the status and header of the answer; an answer not 2xx is an
// *instachat.Error decoded from the API's error JSON, or a plain error
// when it lacks that shape (a proxy's page). It is the raw side of the
// client, for what the domain methods do not show: 201 against 202, a
// header, a request the API should refuse.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) (int, http.Header, error) {
	return c.send(ctx, method, path, in, "", out)
}

// send is Do with an Idempotency-Key, when key is not "".
func (c *Client) send(ctx context.Context, method, path string, in any, key string, out any) (int, http.Header, error) {
	var body io.Reader
	if in != nil {
		// Written as the server writes JSON: '<' as itself, not six bytes.
		var b bytes.Buffer
		if err := newEncoder(&b).Encode(in); err != nil {
			return 0, nil, err
		}
		body = &b
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return 0, nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.AdminToken != "" {
		req.Header.Set("Authorization", "Bearer "+c.AdminToken)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var e errorBody
		if json.NewDecoder(resp.Body).Decode(&e) != nil || e.Error.Code == "" {
			return resp.StatusCode, resp.Header, fmt.Errorf("instachat: %s: unexpected answer %s", method, resp.Status)
		}
		return resp.StatusCode, resp.Header, domainError(e.Error.Code, e.Error.Message)
	}
	if out == nil {
		return resp.StatusCode, resp.Header, nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return resp.StatusCode, resp.Header, fmt.Errorf("instachat: %s: decoding the answer: %w", method, err)
	}
	return resp.StatusCode, resp.Header, nil
}

// domainError is the error an answer's code and message stand for: one of
// the domain's error values when they are its, so that errors.Is finds it
// over HTTP as it would from a backend, else a new *instachat.Error.
func domainError(code, message string) error {
	for _, e := range []*instachat.Error{instachat.ErrApplicationNotFound, instachat.ErrChatNotFound,
		instachat.ErrMessageNotFound, instachat.ErrKeyReused} {
		if e.Code == code && e.Message == message {
			return e
		}
	}
	return &instachat.Error{Code: code, Message: message}
}
