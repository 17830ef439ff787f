package http

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// pieces are what random strings are made of: every escape encoding/json
// writes, the line separators it escapes, invalid UTF-8, HTML characters
// it leaves alone here, and text of every UTF-8 length.
var pieces = []string{"", "a", "hello ", `"`, `\`, "/", "\b", "\f", "\n", "\r", "\t", "\x00", "\x1f", "\x7f", "<", ">", "&",
	"\u2028", "\u2029", "é", "€", "😀", "\xff", "\xe2\x82", "\xed\xa0\x80", "\ufffd", "\u00a0"}

// TestParseStringFieldAgreesWithDecoder: whatever body parseStringField
// accepts, the decoder accepts too, with the same value; the bodies it
// passes on are the decoder's to answer.
func TestParseStringFieldAgreesWithDecoder(t *testing.T) {
	bodies := []string{
		``, ` `, "\n\t", `{}`, ` { } `, `{"body":"hi"}`, ` {"body" : "hi" } `, `{"body":null}`, `{"body":""}`,
		`{"body":"a\"b\\c\/d\b\f\n\r\t"}`, `{"body":"\u00e9\u20ac\ud83d\ude00\u0000"}`, `{"body":"é€😀"}`,
		`{"body":"x"}x`, `{"body":"x"}{}`, `{"body":"x",}`, `{"body":"x","body":"y"}`, `{"Body":"x"}`, `{"bod\u0079":"x"}`,
		`{"body":1}`, `{"body":true}`, `{"body":nul}`, `{"body":"a` + "\n" + `"}`, `{"body":"\x"}`, `{"body":"\u12"}`,
		`{"body":"\ud83d"}`, `{"body":"\ud83dx"}`, `{"body":"\ude00"}`, `{"body":"\ud83d\u0041"}`, `{"body":"x"`, `{"body":`,
		`{"body"`, `{"body`, `{`, `[]`, `"x"`, `null`, `{"name":"x"}`, `{"body":"x","name":"y"}`, `{"body":{"a":1}}`,
		`{"body":"\uD83D\uDE00"}`, `{"body":"\u00"}`,
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 5000 {
		var b strings.Builder
		b.WriteString(`{"body":"`)
		for range r.IntN(6) {
			switch p := pieces[r.IntN(len(pieces))]; p {
			case `"`, `\`:
				b.WriteString(`\` + p)
			case "\b", "\f", "\n", "\r", "\t", "\x00", "\x1f":
				b.WriteString(strings.Trim(escapeAll(p), `"`))
			default:
				if utf8.ValidString(p) {
					b.WriteString(p)
				}
			}
			if r.IntN(4) == 0 {
				b.WriteString(strings.Trim(escapeAll(string(rune(r.IntN(0x11000)))), `"`))
			}
		}
		b.WriteString(`"}`)
		bodies = append(bodies, b.String())
	}
	accepted := 0
	for _, body := range bodies {
		raw := []byte(body)
		if !utf8.Valid(raw) || loneSurrogate(raw) >= 0 {
			continue // refused before either reads it
		}
		value, present, ok := parseStringField(raw, "body")
		if !ok {
			continue
		}
		accepted++
		var req bodyRequest
		if err := decodeRaw(raw, &req); err != nil {
			t.Errorf("%q: parseStringField accepted what the decoder refuses: %v", body, err)
			continue
		}
		if present != (req.Body != nil) || present && value != *req.Body {
			t.Errorf("%q: parseStringField read %q (present %v), the decoder %v", body, value, present, req.Body)
		}
	}
	if accepted < len(bodies)/2 {
		t.Errorf("parseStringField accepted only %d bodies of %d", accepted, len(bodies))
	}
	for _, body := range []string{`{"body":"hi"}`, `{"body":"a\nb"}`, `{}`, ``, `{"body":null}`} {
		if _, _, ok := parseStringField([]byte(body), "body"); !ok {
			t.Errorf("%q: not read by the fast path", body)
		}
	}
}
