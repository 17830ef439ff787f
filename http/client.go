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

// Client calls the Instachat API. Error answers come back as
// *instachat.Error, so callers test them with instachat.ErrorCode as they
// would a backend's errors.
type Client struct {
	// AdminToken, when set, goes as "Authorization: Bearer" with every
	// request; listing every application needs it.
	AdminToken string

	base string
	hc   *http.Client
}

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
	app, _, err := call[instachat.Application](c, ctx, http.MethodPost, "/applications", nameRequest{&name})
	return app, err
}

// Application reads an application.
func (c *Client) Application(ctx context.Context, token string) (*instachat.Application, error) {
	app, _, err := call[instachat.Application](c, ctx, http.MethodGet, appURL(token), nil)
	return app, err
}

// Applications returns a page and the cursor of the next, "" on the last.
func (c *Client) Applications(ctx context.Context, limit int, cursor string) ([]*instachat.Application, string, error) {
	return list[instachat.Application](c, ctx, "/applications", pageQuery(limit, cursor))
}

// UpdateApplication renames an application.
func (c *Client) UpdateApplication(ctx context.Context, token, name string) (*instachat.Application, error) {
	app, _, err := call[instachat.Application](c, ctx, http.MethodPatch, appURL(token), nameRequest{&name})
	return app, err
}

// CreateChat also returns the status: 201 when the chat is readable now,
// 202 when it will be shortly.
func (c *Client) CreateChat(ctx context.Context, token, name string) (*instachat.Chat, int, error) {
	ch, status, err := call[instachat.Chat](c, ctx, http.MethodPost, appURL(token)+"/chats", nameRequest{&name})
	return fillChat(ch, token), status, err
}

// Chat reads a chat.
func (c *Client) Chat(ctx context.Context, token string, chat int64) (*instachat.Chat, error) {
	ch, _, err := call[instachat.Chat](c, ctx, http.MethodGet, chatURL(token, chat), nil)
	return fillChat(ch, token), err
}

// Chats returns a page and the cursor of the next, "" on the last.
func (c *Client) Chats(ctx context.Context, token string, limit int, cursor string) ([]*instachat.Chat, string, error) {
	chats, next, err := list[instachat.Chat](c, ctx, appURL(token)+"/chats", pageQuery(limit, cursor))
	for _, ch := range chats {
		fillChat(ch, token)
	}
	return chats, next, err
}

// UpdateChat renames a chat.
func (c *Client) UpdateChat(ctx context.Context, token string, chat int64, name string) (*instachat.Chat, error) {
	ch, _, err := call[instachat.Chat](c, ctx, http.MethodPatch, chatURL(token, chat), nameRequest{&name})
	return fillChat(ch, token), err
}

// CreateMessage also returns the status: 201 when the message is readable
// now, 202 when it will be shortly.
func (c *Client) CreateMessage(ctx context.Context, token string, chat int64, body string) (*instachat.Message, int, error) {
	m, status, err := call[instachat.Message](c, ctx, http.MethodPost, chatURL(token, chat)+"/messages", bodyRequest{&body})
	return fillMessage(m, token, chat), status, err
}

// Message reads a message.
func (c *Client) Message(ctx context.Context, token string, chat, number int64) (*instachat.Message, error) {
	m, _, err := call[instachat.Message](c, ctx, http.MethodGet, messageURL(token, chat, number), nil)
	return fillMessage(m, token, chat), err
}

// Messages returns a page and the cursor of the next, "" on the last.
func (c *Client) Messages(ctx context.Context, token string, chat int64, limit int, cursor string) ([]*instachat.Message, string, error) {
	return c.messages(ctx, token, chat, "/messages", pageQuery(limit, cursor))
}

// UpdateMessage replaces the body of a message.
func (c *Client) UpdateMessage(ctx context.Context, token string, chat, number int64, body string) (*instachat.Message, error) {
	m, _, err := call[instachat.Message](c, ctx, http.MethodPatch, messageURL(token, chat, number), bodyRequest{&body})
	return fillMessage(m, token, chat), err
}

// SearchMessages returns a page of matches, best first, and the cursor of
// the next page, "" on the last.
func (c *Client) SearchMessages(ctx context.Context, token string, chat int64, q string, limit int,
	cursor string) ([]*instachat.Message, string, error) {
	query := pageQuery(limit, cursor)
	query.Set("q", q)
	return c.messages(ctx, token, chat, "/messages/search", query)
}

func (c *Client) messages(ctx context.Context, token string, chat int64, suffix string, q url.Values) ([]*instachat.Message, string, error) {
	msgs, next, err := list[instachat.Message](c, ctx, chatURL(token, chat)+suffix, q)
	for _, m := range msgs {
		fillMessage(m, token, chat)
	}
	return msgs, next, err
}

// fillChat and fillMessage set what the JSON leaves out because the URL
// already says it.
func fillChat(ch *instachat.Chat, token string) *instachat.Chat {
	if ch != nil {
		ch.Token = token
	}
	return ch
}

func fillMessage(m *instachat.Message, token string, chat int64) *instachat.Message {
	if m != nil {
		m.Token, m.Chat = token, chat
	}
	return m
}

func appURL(token string) string { return "/applications/" + url.PathEscape(token) }

func chatURL(token string, chat int64) string {
	return appURL(token) + "/chats/" + strconv.FormatInt(chat, 10)
}

func messageURL(token string, chat, number int64) string {
	return chatURL(token, chat) + "/messages/" + strconv.FormatInt(number, 10)
}

// pageQuery leaves out what is zero so the server applies its defaults.
func pageQuery(limit int, cursor string) url.Values {
	q := url.Values{}
	if limit != 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	return q
}

// call answers one resource and the status.
func call[T any](c *Client, ctx context.Context, method, path string, in any) (*T, int, error) {
	var out T
	status, err := c.do(ctx, method, path, in, &out)
	if err != nil {
		return nil, status, err
	}
	return &out, status, nil
}

func list[T any](c *Client, ctx context.Context, path string, q url.Values) ([]*T, string, error) {
	var p page[*T]
	if _, err := c.do(ctx, http.MethodGet, path+"?"+q.Encode(), nil, &p); err != nil {
		return nil, "", err
	}
	var next string
	if p.NextCursor != nil {
		next = *p.NextCursor
	}
	return p.Data, next, nil
}

// do sends in as JSON (when not nil), decodes a 2xx answer into out and
// returns the status. Other answers become *instachat.Error, or a plain
// error when they do not have the API's error shape (a proxy's page).
func (c *Client) do(ctx context.Context, method, path string, in, out any) (int, error) {
	var body io.Reader
	if in != nil {
		// Written as the server writes JSON: '<' as itself, not six bytes.
		var b bytes.Buffer
		if err := newEncoder(&b).Encode(in); err != nil {
			return 0, err
		}
		body = &b
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return 0, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.AdminToken != "" {
		req.Header.Set("Authorization", "Bearer "+c.AdminToken)
	}
	if key := idempotencyKeyOf(ctx); key != "" && method == http.MethodPost {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var e errorBody
		if json.NewDecoder(resp.Body).Decode(&e) != nil || e.Error.Code == "" {
			return resp.StatusCode, fmt.Errorf("instachat: %s: unexpected answer %s", method, resp.Status)
		}
		return resp.StatusCode, &instachat.Error{Code: e.Error.Code, Message: e.Error.Message}
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return resp.StatusCode, fmt.Errorf("instachat: %s: decoding the answer: %w", method, err)
	}
	return resp.StatusCode, nil
}

// AllMessages walks every page of a chat's messages, in number order.
func (c *Client) AllMessages(ctx context.Context, token string, chat int64) ([]*instachat.Message, error) {
	var all []*instachat.Message
	for cursor := ""; ; {
		page, next, err := c.Messages(ctx, token, chat, 100, cursor)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if next == "" {
			return all, nil
		}
		cursor = next
	}
}
