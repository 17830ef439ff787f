// Package apitest holds what tests of several packages need from the API beyond
// the Go client: creates that also report the status they were answered with.
package apitest

import (
	"context"
	"net/http"

	"github.com/instachat/instachat"
	instachathttp "github.com/instachat/instachat/http"
)

// PostChat and PostMessage create as the client's CreateChat and
// CreateMessage do, and also return the status, for the tests that tell
// 201 (readable now) from 202 (stored shortly after).
func PostChat(ctx context.Context, c *instachathttp.Client, token, name string) (*instachat.Chat, int, error) {
	var ch instachat.Chat
	status, _, err := c.Do(ctx, http.MethodPost, instachathttp.AppPath(token)+"/chats", map[string]string{"name": name}, &ch)
	if err != nil {
		return nil, status, err
	}
	ch.Token = token
	return &ch, status, nil
}

func PostMessage(ctx context.Context, c *instachathttp.Client, token string, chat int64, body string) (*instachat.Message, int, error) {
	var m instachat.Message
	status, _, err := c.Do(ctx, http.MethodPost, instachathttp.ChatPath(token, chat)+"/messages", map[string]string{"body": body}, &m)
	if err != nil {
		return nil, status, err
	}
	m.Token, m.Chat = token, chat
	return &m, status, nil
}
