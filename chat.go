package instachat

import "time"

// Chat is a conversation inside an application, numbered 1, 2, 3… per
// application.
type Chat struct {
	Token         string    `json:"-"`
	Number        int64     `json:"number"`
	Name          string    `json:"name"`
	MessagesCount int64     `json:"messages_count"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// Message is one message of a chat, numbered 1, 2, 3… per chat.
type Message struct {
	Token     string    `json:"-"`
	Chat      int64     `json:"-"`
	Number    int64     `json:"number"`
	Body      string    `json:"body"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}
