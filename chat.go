package instachat

import "time"

// Chat is a conversation inside an application, numbered 1, 2, 3… per
// application.
type Chat struct {
	Token         string `json:"-"`
	Number        int64  `json:"number"`
	Name          string `json:"name"`
	MessagesCount int64  `json:"messages_count"`
	// Revision is the chat's feed revision: the count of committed changes
	// to its messages (see Feeds).
	Revision int64 `json:"revision"`
	// AppRevision is the application feed's revision of the chat's latest
	// change (created, renamed); CreatedAppRevision that of its creation.
	AppRevision        int64     `json:"-"`
	CreatedAppRevision int64     `json:"-"`
	CreatedAt          time.Time `json:"created_at"`
	UpdatedAt          time.Time `json:"updated_at"`
}

// Message is one message of a chat, numbered 1, 2, 3… per chat.
type Message struct {
	Token  string `json:"-"`
	Chat   int64  `json:"-"`
	Number int64  `json:"number"`
	Body   string `json:"body"`
	// Revision is the chat revision of the message's latest change and
	// CreatedRevision that of its creation (see Feeds).
	Revision        int64     `json:"-"`
	CreatedRevision int64     `json:"-"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
}
