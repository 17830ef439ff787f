package instachat

import (
	"bytes"
	"encoding/json"
	"time"
)

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
	// DeletedAt is set on the tombstone of a deleted chat, as the
	// application feed lists it (chat.deleted): a tombstone shows only its
	// number and deleted_at.
	DeletedAt *time.Time `json:"deleted_at,omitempty"`
}

// tombstone is the JSON of a deleted chat: its number and when it was
// deleted, nothing it held.
type tombstone struct {
	Number    int64     `json:"number"`
	DeletedAt time.Time `json:"deleted_at"`
}

// MarshalJSON writes a deleted chat as its tombstone. (A chat's name may
// be empty, so omitempty cannot shape it, as it does a Message's.) It
// escapes no HTML, as the API writes JSON.
func (c Chat) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	var err error
	if c.DeletedAt != nil {
		err = enc.Encode(tombstone{c.Number, *c.DeletedAt})
	} else {
		type plain Chat
		err = enc.Encode(plain(c))
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), err
}

// Tombstone is what the feed shows of a deleted message: its number, when
// it was deleted, and (not in JSON) its key and revisions.
func (m *Message) Tombstone() *Message {
	return &Message{Token: m.Token, Chat: m.Chat, Number: m.Number, Revision: m.Revision, CreatedRevision: m.CreatedRevision, DeletedAt: m.DeletedAt}
}

// Message is one message of a chat, numbered 1, 2, 3… per chat.
type Message struct {
	Token  string `json:"-"`
	Chat   int64  `json:"-"`
	Number int64  `json:"number"`
	// Body is never empty but in a tombstone, which shows only its
	// number and deleted_at: see Tombstone.
	Body string `json:"body,omitempty"`
	// Revision is the chat revision of the message's latest change and
	// CreatedRevision that of its creation (see Feeds).
	Revision        int64     `json:"-"`
	CreatedRevision int64     `json:"-"`
	CreatedAt       time.Time `json:"created_at,omitzero"`
	UpdatedAt       time.Time `json:"updated_at,omitzero"`
	// DeletedAt is set on a deleted message's tombstone, the row that
	// keeps its number and revisions once its body is erased, as the
	// chat feed lists it (message.deleted); and on a create that the store
	// dropped because its message, chat or application was deleted.
	DeletedAt *time.Time `json:"deleted_at,omitempty"`
}
