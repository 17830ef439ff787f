package jsonenc

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/instachat/instachat"
)

// encoded is what an Encoder without HTML escaping writes of v, without
// its newline.
func encoded(t *testing.T, v any) string {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
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
		if got, want := string(AppendString(nil, s)), encoded(t, s); got != want {
			t.Fatalf("AppendString(%q) = %s, encoding/json %s", s, got, want)
		}
		m := &instachat.Message{Token: "t", Chat: 3, Number: r.Int64N(1 << 40), Body: randomString(r), Revision: 5,
			CreatedAt: randomTime(r), UpdatedAt: randomTime(r), DeletedAt: randomDeleted(r)}
		got, ok := AppendMessage(nil, m)
		if want := encoded(t, m); !ok || string(got) != want {
			t.Fatalf("AppendMessage(%+v) = %s (%v), encoding/json %s", m, got, ok, want)
		}
		c := &instachat.Chat{Token: "t", Number: r.Int64N(1 << 40), Name: randomString(r), MessagesCount: r.Int64N(1e6),
			Revision: r.Int64N(1e6), AppRevision: 7, CreatedAt: randomTime(r), UpdatedAt: randomTime(r), DeletedAt: randomDeleted(r)}
		got, ok = AppendChat(nil, c)
		if want := encoded(t, c); !ok || string(got) != want {
			t.Fatalf("AppendChat(%+v) = %s (%v), encoding/json %s", c, got, ok, want)
		}
		events := []instachat.Event{{Event: randomString(r), Revision: r.Int64N(1 << 40), Message: m},
			{Event: "chat.created", Revision: 3, Chat: c}, {Event: "application.deleted"}}
		n := r.IntN(len(events) + 1)
		got, ok = AppendEvents(nil, events[:n])
		if want := encoded(t, events[:n]); !ok || string(got) != want {
			t.Fatalf("AppendEvents(%+v) = %s (%v), encoding/json %s", events[:n], got, ok, want)
		}
	}
	if got, ok := AppendEvents(nil, nil); !ok || string(got) != "[]" {
		t.Errorf("AppendEvents(nil) = %s, want []", got)
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
		if _, ok := AppendMessage(nil, &instachat.Message{Number: 1, Body: "b", CreatedAt: at}); ok {
			t.Errorf("AppendMessage accepted created_at %v", at)
		}
		if _, ok := AppendChat(nil, &instachat.Chat{Number: 1, UpdatedAt: at}); ok {
			t.Errorf("AppendChat accepted updated_at %v", at)
		}
		if _, ok := AppendEvents(nil, []instachat.Event{{Event: "message.created", Message: &instachat.Message{CreatedAt: at}}}); ok {
			t.Errorf("AppendEvents accepted a message created at %v", at)
		}
	}
}
