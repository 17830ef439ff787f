package kafka

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/instachat/instachat"
)

// wire is a Create as a record value. Version 1 only ever gains fields,
// which older decoders ignore; a change they would misread bumps V, and a
// worker that does not know the version dead-letters the record rather than
// guess.
type wire struct {
	V         int       `json:"v"`
	Kind      string    `json:"kind"` // "chat" or "message"
	Token     string    `json:"token"`
	Chat      int64     `json:"chat"`
	Message   int64     `json:"message,omitempty"`
	Name      string    `json:"name,omitempty"`
	Body      string    `json:"body,omitempty"`
	CreatedAt time.Time `json:"created_at"` // RFC 3339 with all the digits it has
	UpdatedAt time.Time `json:"updated_at"`
}

func encode(c instachat.Create) ([]byte, error) {
	var w wire
	switch {
	case c.Chat != nil:
		w = wire{Kind: "chat", Token: c.Chat.Token, Chat: c.Chat.Number, Name: c.Chat.Name, CreatedAt: c.Chat.CreatedAt, UpdatedAt: c.Chat.UpdatedAt}
	case c.Message != nil:
		m := c.Message
		w = wire{Kind: "message", Token: m.Token, Chat: m.Chat, Message: m.Number, Body: m.Body, CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt}
	default:
		return nil, fmt.Errorf("kafka: create holds neither a chat nor a message")
	}
	w.V = 1
	return json.Marshal(w)
}

func decode(value []byte) (instachat.Create, error) {
	var w wire
	if err := json.Unmarshal(value, &w); err != nil {
		return instachat.Create{}, fmt.Errorf("undecodable create: %w", err)
	}
	if w.V != 1 {
		return instachat.Create{}, fmt.Errorf("undecodable create: unknown version %d", w.V)
	}
	switch w.Kind {
	case "chat":
		return instachat.Create{Chat: &instachat.Chat{Token: w.Token, Number: w.Chat, Name: w.Name, CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt}}, nil
	case "message":
		return instachat.Create{Message: &instachat.Message{Token: w.Token, Chat: w.Chat, Number: w.Message, Body: w.Body, CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt}}, nil
	}
	return instachat.Create{}, fmt.Errorf("undecodable create: unknown kind %q", w.Kind)
}
