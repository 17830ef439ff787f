package http

import (
	"sync"
	"unicode/utf8"
)

// The create answers are written by hand (package jsonenc), into pooled
// buffers, and the usual request bodies read by hand (parseStringField).

// buffer is a pooled byte slice of a request's body or of an answer.
type buffer struct{ b []byte }

// maxPooled is the capacity past which a buffer is dropped rather than
// pooled, so that one large body does not keep its memory in the pool.
const maxPooled = 64 << 10

var buffers = sync.Pool{New: func() any { return &buffer{b: make([]byte, 0, 1024)} }}

func getBuffer() *buffer { return buffers.Get().(*buffer) }

func putBuffer(b *buffer) {
	if cap(b.b) > maxPooled {
		return
	}
	b.b = b.b[:0]
	buffers.Put(b)
}

// parseStringField reads raw, a request body of valid UTF-8 without a
// lone surrogate escape, when it is whitespace, {}, or an object whose one
// key is field, spelled exactly and without escapes, whose value is a
// string or null: ok is then true, and present tells a string, value,
// from a field absent or null. Anything else — another key, a key given twice,
// another type, a control character in the string, invalid JSON — is
// ok false, for encoding/json and checkKeys to read and to explain, so
// that this fast path answers only what they would answer the same way.
func parseStringField(raw []byte, field string) (value string, present, ok bool) {
	i := skipSpace(raw, 0)
	if i == len(raw) {
		return "", false, true
	}
	if raw[i] != '{' {
		return "", false, false
	}
	i = skipSpace(raw, i+1)
	if i < len(raw) && raw[i] == '}' {
		return "", false, skipSpace(raw, i+1) == len(raw)
	}
	// The key: exactly field, between quotes.
	if i >= len(raw) || raw[i] != '"' || len(raw)-i-1 < len(field)+1 ||
		string(raw[i+1:i+1+len(field)]) != field || raw[i+1+len(field)] != '"' {
		return "", false, false
	}
	i = skipSpace(raw, i+2+len(field))
	if i >= len(raw) || raw[i] != ':' {
		return "", false, false
	}
	i = skipSpace(raw, i+1)
	switch {
	case i < len(raw) && raw[i] == '"':
		s, end, ok := parseString(raw, i)
		if !ok {
			return "", false, false
		}
		value, present, i = s, true, end
	case len(raw)-i >= 4 && string(raw[i:i+4]) == "null":
		i += 4
	default:
		return "", false, false
	}
	i = skipSpace(raw, i)
	if i >= len(raw) || raw[i] != '}' {
		return "", false, false
	}
	return value, present, skipSpace(raw, i+1) == len(raw)
}

func skipSpace(raw []byte, i int) int {
	for i < len(raw) && (raw[i] == ' ' || raw[i] == '\t' || raw[i] == '\n' || raw[i] == '\r') {
		i++
	}
	return i
}

// parseString reads the JSON string that starts at raw[start], a quote,
// and returns it and the offset past its closing quote. raw is valid UTF-8,
// and its surrogate escapes come in pairs (decodeJSON checked both).
func parseString(raw []byte, start int) (string, int, bool) {
	i := start + 1
	for i < len(raw) && raw[i] != '"' && raw[i] != '\\' && raw[i] >= 0x20 {
		i++
	}
	if i >= len(raw) || raw[i] < 0x20 {
		return "", 0, false
	}
	if raw[i] == '"' { // no escape: the common case, one copy
		return string(raw[start+1 : i]), i + 1, true
	}
	out := make([]byte, 0, len(raw)-start)
	out = append(out, raw[start+1:i]...)
	for i < len(raw) {
		c := raw[i]
		switch {
		case c == '"':
			return string(out), i + 1, true
		case c < 0x20:
			return "", 0, false
		case c != '\\':
			out = append(out, c)
			i++
			continue
		}
		if i+1 >= len(raw) {
			return "", 0, false
		}
		switch e := raw[i+1]; e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := readHex4(raw, i+2)
			if !ok {
				return "", 0, false
			}
			i += 6
			if 0xD800 <= r && r < 0xDC00 {
				low, ok := rune(0), i+1 < len(raw) && raw[i] == '\\' && raw[i+1] == 'u'
				if ok {
					low, ok = readHex4(raw, i+2)
				}
				if !ok || low < 0xDC00 || low >= 0xE000 {
					return "", 0, false
				}
				r = 0x10000 + (r-0xD800)<<10 + (low - 0xDC00)
				i += 6
			} else if 0xDC00 <= r && r < 0xE000 {
				return "", 0, false
			}
			out = utf8.AppendRune(out, r)
			continue
		default:
			return "", 0, false
		}
		i += 2
	}
	return "", 0, false
}

// readHex4 reads the four hex digits at raw[i:].
func readHex4(raw []byte, i int) (rune, bool) {
	if i+4 > len(raw) {
		return 0, false
	}
	var r rune
	for _, c := range raw[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c|0x20 && c|0x20 <= 'f':
			r = r<<4 | rune(c|0x20-'a'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
