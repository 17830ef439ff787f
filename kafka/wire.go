package kafka

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/instachat/instachat"
)

// A record value is a Create in one of two formats, told apart by the
// first byte:
//
//	'{'   version 1: JSON (wireV1), what releases before version 2 wrote;
//	      still decoded, never written
//	0x02  version 2: binary, what encode writes:
//
//	      version  byte 0x02
//	      kind     byte 'c' (chat) or 'm' (message)
//	      token    uvarint length, then the bytes
//	      chat     varint
//	      number   varint, messages only
//	      text     uvarint length, then the bytes: the chat's name or the message's body
//	      created  varint Unix seconds, uvarint nanoseconds
//	      updated  varint Unix seconds, uvarint nanoseconds
//
// Version 2 only ever gains fields at its end, which older decoders ignore;
// a change they would misread takes a new version byte, and a worker that
// does not know the version dead-letters the record rather than guess.
// Times travel as instants and come back in UTC, as the dispatcher makes
// them; text travels byte for byte.
//
// Version 2 replaced JSON, whose encoding and decoding was the largest cost
// of Instachat's own code under create load (docs/BENCHMARKS.md). Upgrade workers
// before dispatchers: a worker of an older release dead-letters version 2
// records as undecodable.
const (
	v2       = 0x02
	kindChat = 'c'
	kindMsg  = 'm'
	// maxV2Overhead bounds the bytes of a version 2 record besides its
	// token and text: 2 bytes; 2 lengths, 2 numbers and 2 seconds of at
	// most binary.MaxVarintLen64 bytes; 2 nanoseconds (< 2³⁰) of at most 5.
	maxV2Overhead = 2 + 6*binary.MaxVarintLen64 + 2*5
)

// encode returns c as a version 2 record value, and the record key as a
// slice of the value, so that both take one allocation. A chat create's
// key is its token, so that the chats of an application keep their order
// in one partition; a message create's key is its token and chat number
// (the token's bytes then the chat's varint, as the value holds them), so
// that the chats of one application spread over the partitions, each
// chat's messages in order in one of them.
func encode(c instachat.Create) (key, value []byte, err error) {
	var (
		kind             byte
		token, text      string
		chat, number     int64
		created, updated time.Time
	)
	switch {
	case c.Chat != nil:
		ch := c.Chat
		kind, token, chat, text, created, updated = kindChat, ch.Token, ch.Number, ch.Name, ch.CreatedAt, ch.UpdatedAt
	case c.Message != nil:
		m := c.Message
		kind, token, chat, number, text, created, updated = kindMsg, m.Token, m.Chat, m.Number, m.Body, m.CreatedAt, m.UpdatedAt
	default:
		return nil, nil, errors.New("kafka: create holds neither a chat nor a message")
	}
	b := make([]byte, 0, maxV2Overhead+len(token)+len(text))
	b = append(b, v2, kind)
	b = binary.AppendUvarint(b, uint64(len(token)))
	start := len(b)
	b = append(b, token...)
	if kind == kindMsg {
		b = binary.AppendVarint(b, chat)
		key = b[start:len(b):len(b)]
	} else {
		key = b[start:len(b):len(b)]
		b = binary.AppendVarint(b, chat)
	}
	if kind == kindMsg {
		b = binary.AppendVarint(b, number)
	}
	b = binary.AppendUvarint(b, uint64(len(text)))
	b = append(b, text...)
	b = appendTime(b, created)
	b = appendTime(b, updated)
	return key, b, nil
}

func appendTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

// decode reads a record value of either version.
func decode(value []byte) (instachat.Create, error) {
	if len(value) == 0 {
		return instachat.Create{}, errors.New("undecodable create: empty record")
	}
	switch value[0] {
	case v2:
		return decodeV2(value[1:])
	case '{', ' ', '\t', '\n', '\r':
		return decodeV1(value)
	}
	return instachat.Create{}, fmt.Errorf("undecodable create: unknown format byte %#02x", value[0])
}

func decodeV2(value []byte) (instachat.Create, error) {
	r := reader{b: value}
	kind := r.byte()
	token := r.bytes()
	chat := r.varint()
	var number int64
	if kind == kindMsg {
		number = r.varint()
	}
	text := r.bytes()
	created, updated := r.time(), r.time()
	// Bytes left over are fields of a later revision of version 2.
	if r.err != nil {
		return instachat.Create{}, fmt.Errorf("undecodable create: version 2: %w", r.err)
	}
	switch kind {
	case kindChat:
		return instachat.Create{Chat: &instachat.Chat{Token: string(token), Number: chat, Name: string(text), CreatedAt: created, UpdatedAt: updated}}, nil
	case kindMsg:
		return instachat.Create{Message: &instachat.Message{Token: string(token), Chat: chat, Number: number,
			Body: string(text), CreatedAt: created, UpdatedAt: updated}}, nil
	}
	return instachat.Create{}, fmt.Errorf("undecodable create: version 2: unknown kind %#02x", kind)
}

// reader reads the fields of a version 2 record; the first failure sticks
// in err, after which every read returns zero.
type reader struct {
	b   []byte
	err error
}

var errTruncated = errors.New("truncated")

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.b = nil
}

func (r *reader) byte() byte {
	if len(r.b) == 0 {
		r.fail(errTruncated)
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(errTruncated) // or overflowing 64 bits
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(errTruncated)
		return 0
	}
	r.b = r.b[n:]
	return v
}

// bytes reads a length and that many bytes, which alias the record.
func (r *reader) bytes() []byte {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail(errTruncated)
		return nil
	}
	s := r.b[:n]
	r.b = r.b[n:]
	return s
}

func (r *reader) time() time.Time {
	sec, nsec := r.varint(), r.uvarint()
	if nsec >= uint64(time.Second) {
		r.fail(fmt.Errorf("nanoseconds %d out of range", nsec))
	}
	if r.err != nil {
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

// wireV1 is a Create as a version 1 record value. It is decoded only:
// records of earlier releases may wait in the topic, or in a dead-letter
// topic to be replayed.
type wireV1 struct {
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

func decodeV1(value []byte) (instachat.Create, error) {
	var w wireV1
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
		return instachat.Create{Message: &instachat.Message{Token: w.Token, Chat: w.Chat, Number: w.Message,
			Body: w.Body, CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt}}, nil
	}
	return instachat.Create{}, fmt.Errorf("undecodable create: unknown kind %q", w.Kind)
}
