// Package jsonenc writes the API's types as encoding/json does, by hand:
// reflection over the structs, a MarshalJSON per time and the Chat's own
// encoder were most of the allocations of a create's request and of each
// event published (docs/BENCHMARKS.md). Each Append function writes the
// bytes an encoding/json Encoder without HTML escaping writes for its
// type, which the tests hold against encoding/json over many values, and
// reports false for a value encoding/json would refuse (a year past 9999),
// for the caller to hand to encoding/json instead.
package jsonenc

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/instachat/instachat"
)

// AppendMessage appends m as encoding/json writes an *instachat.Message.
func AppendMessage(b []byte, m *instachat.Message) ([]byte, bool) {
	ok := true
	b = append(b, `{"number":`...)
	b = strconv.AppendInt(b, m.Number, 10)
	if m.Body != "" {
		b = append(b, `,"body":`...)
		b = AppendString(b, m.Body)
	}
	if !m.CreatedAt.IsZero() {
		b = append(b, `,"created_at":`...)
		b = appendTime(b, m.CreatedAt, &ok)
	}
	if !m.UpdatedAt.IsZero() {
		b = append(b, `,"updated_at":`...)
		b = appendTime(b, m.UpdatedAt, &ok)
	}
	if m.DeletedAt != nil {
		b = append(b, `,"deleted_at":`...)
		b = appendTime(b, *m.DeletedAt, &ok)
	}
	return append(b, '}'), ok
}

// AppendChat appends c as its MarshalJSON writes it: a deleted chat as its
// tombstone.
func AppendChat(b []byte, c *instachat.Chat) ([]byte, bool) {
	ok := true
	b = append(b, `{"number":`...)
	b = strconv.AppendInt(b, c.Number, 10)
	if c.DeletedAt != nil {
		b = append(b, `,"deleted_at":`...)
		b = appendTime(b, *c.DeletedAt, &ok)
		return append(b, '}'), ok
	}
	b = append(b, `,"name":`...)
	b = AppendString(b, c.Name)
	b = append(b, `,"messages_count":`...)
	b = strconv.AppendInt(b, c.MessagesCount, 10)
	b = append(b, `,"revision":`...)
	b = strconv.AppendInt(b, c.Revision, 10)
	b = append(b, `,"created_at":`...)
	b = appendTime(b, c.CreatedAt, &ok)
	b = append(b, `,"updated_at":`...)
	b = appendTime(b, c.UpdatedAt, &ok)
	return append(b, '}'), ok
}

// appendTime appends t as time.Time's MarshalJSON does, and clears ok when
// that would fail: a year outside 0–9999, or a zone offset of 24 hours or
// more, which RFC 3339 cannot write.
func appendTime(b []byte, t time.Time, ok *bool) []byte {
	if y := t.Year(); y < 0 || y > 9999 {
		*ok = false
	}
	if _, offset := t.Zone(); offset <= -24*3600 || offset >= 24*3600 {
		*ok = false
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// AppendString appends s quoted as encoding/json writes a string without
// HTML escaping: '"' and '\\' escaped, control characters as \b, \f, \n,
// \r, \t or \u00XX, U+2028 and U+2029 as \u2028 and \u2029 (JavaScript
// reads them as line ends), and each byte of invalid UTF-8 as \ufffd.
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// AppendEvent appends e as encoding/json writes an instachat.Event.
func AppendEvent(b []byte, e instachat.Event) ([]byte, bool) {
	ok := true
	b = append(b, `{"event":`...)
	b = AppendString(b, e.Event)
	b = append(b, `,"revision":`...)
	b = strconv.AppendInt(b, e.Revision, 10)
	if e.Message != nil {
		b = append(b, `,"message":`...)
		var fine bool
		b, fine = AppendMessage(b, e.Message)
		ok = ok && fine
	}
	if e.Chat != nil {
		b = append(b, `,"chat":`...)
		var fine bool
		b, fine = AppendChat(b, e.Chat)
		ok = ok && fine
	}
	return append(b, '}'), ok
}

// AppendEvents appends events as encoding/json writes a []instachat.Event.
func AppendEvents(b []byte, events []instachat.Event) ([]byte, bool) {
	ok := true
	b = append(b, '[')
	for i, e := range events {
		if i > 0 {
			b = append(b, ',')
		}
		var fine bool
		b, fine = AppendEvent(b, e)
		ok = ok && fine
	}
	return append(b, ']'), ok
}
