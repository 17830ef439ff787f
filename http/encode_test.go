package http

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/instachat/instachat"
)

// encoded is what writeJSON writes of v, without its newline.
func encoded(t *testing.T, v any) string {
	t.Helper()
	var b bytes.Buffer
	if err := newEncoder(&b).Encode(v); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// pieces are what random strings are made of: every escape encoding/json
// writes, the line separators it escapes, invalid UTF-8, HTML characters
// it leaves alone here, and text of every UTF-8 length.
var pieces = []string{"", "a", "hello ", `"`, `\`, "/", "\b", "\f", "\n", "\r", "\t", "\x00", "\x1f", "\x7f", "<", ">", "&",
	"\u2028", "\u2029", "é", "€", "😀", "\xff", "\xe2\x82", "\xed\xa0\x80", "\ufffd", "\u00a0"}

func randomString(r *rand.Rand) string {
	var b strings.Builder
	for range r.IntN(8) {
		b.WriteString(pieces[r.IntN(len(pieces))])
	}
	return b.String()
}

func randomTime(r *rand.Rand) time.Time {
	switch r.IntN(4) {
	case 0:
		return time.Time{}
	case 1: // whole seconds, as RFC3339Nano then writes no fraction
		return time.Unix(r.Int64N(4e9), 0).UTC()
	case 2:
		return time.Unix(r.Int64N(4e9), r.Int64N(1e9)).In(time.FixedZone("x", 3600*r.IntN(24)-12*3600))
	}
	return instachat.Timestamp(time.Unix(r.Int64N(4e9), r.Int64N(1e9)))
}

func randomDeleted(r *rand.Rand) *time.Time {
	if r.IntN(3) > 0 {
		return nil
	}
	t := randomTime(r)
	return &t
}

// TestAppendJSONMatchesEncoder holds the hand-written encodings of the
// create answers to what encoding/json writes of the same values.
func TestAppendJSONMatchesEncoder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		s := randomString(r)
		if got, want := string(appendString(nil, s)), encoded(t, s); got != want {
			t.Fatalf("appendString(%q) = %s, encoding/json %s", s, got, want)
		}
		m := &instachat.Message{Token: "t", Chat: 3, Number: r.Int64N(1 << 40), Body: randomString(r), Revision: 5,
			CreatedAt: randomTime(r), UpdatedAt: randomTime(r), DeletedAt: randomDeleted(r)}
		got, ok := appendMessage(nil, m)
		if want := encoded(t, m); !ok || string(got) != want {
			t.Fatalf("appendMessage(%+v) = %s (%v), encoding/json %s", m, got, ok, want)
		}
		c := &instachat.Chat{Token: "t", Number: r.Int64N(1 << 40), Name: randomString(r), MessagesCount: r.Int64N(1e6),
			Revision: r.Int64N(1e6), AppRevision: 7, CreatedAt: randomTime(r), UpdatedAt: randomTime(r), DeletedAt: randomDeleted(r)}
		got, ok = appendChat(nil, c)
		if want := encoded(t, c); !ok || string(got) != want {
			t.Fatalf("appendChat(%+v) = %s (%v), encoding/json %s", c, got, ok, want)
		}
	}
}

// TestAppendJSONRefusesWhatEncoderRefuses: a time RFC 3339 cannot write is
// left to encoding/json, to fail there as before.
func TestAppendJSONRefusesWhatEncoderRefuses(t *testing.T) {
	for _, at := range []time.Time{
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("far", 24*3600)),
	} {
		if _, ok := appendMessage(nil, &instachat.Message{Number: 1, Body: "b", CreatedAt: at}); ok {
			t.Errorf("appendMessage accepted created_at %v", at)
		}
		if _, ok := appendChat(nil, &instachat.Chat{Number: 1, UpdatedAt: at}); ok {
			t.Errorf("appendChat accepted updated_at %v", at)
		}
	}
}

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
