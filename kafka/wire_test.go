package kafka

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/instachat/instachat"
)

// encodeV1 writes c as releases before version 2 did (their encode, kept
// here to put old records on a topic).
func encodeV1(t testing.TB, c instachat.Create) []byte {
	t.Helper()
	w := wireV1{V: 1}
	if m := c.Message; m != nil {
		w.Kind, w.Token, w.Chat, w.Message, w.Body, w.CreatedAt, w.UpdatedAt = "message", m.Token, m.Chat, m.Number, m.Body, m.CreatedAt, m.UpdatedAt
	} else {
		ch := c.Chat
		w.Kind, w.Token, w.Chat, w.Name, w.CreatedAt, w.UpdatedAt = "chat", ch.Token, ch.Number, ch.Name, ch.CreatedAt, ch.UpdatedAt
	}
	v, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// kinds of creates the encoding must carry unchanged.
func encodingCases() []instachat.Create {
	at := time.Date(2024, 2, 29, 23, 59, 58, 123456000, time.UTC)
	return []instachat.Create{
		{Chat: &instachat.Chat{Token: "t", Number: 7, Name: "général ✓", CreatedAt: at, UpdatedAt: at.Add(time.Microsecond)}},
		{Chat: &instachat.Chat{Token: instachat.NewToken(), Number: 1 << 40, CreatedAt: at, UpdatedAt: at}}, // no name
		{Message: &instachat.Message{Token: "t", Chat: 7, Number: 9, Body: "line\n\"quoted\" <b>&</b> \u2028", CreatedAt: at, UpdatedAt: at}},
		{Message: &instachat.Message{Token: instachat.NewToken(), Chat: 1, Number: 1,
			Body: strings.Repeat("é", 32768), CreatedAt: at, UpdatedAt: at.Add(time.Hour)}},
		// Nanoseconds, times before 1970 and the zero time.
		{Message: &instachat.Message{Token: "t", Chat: 2, Number: 3, Body: "b",
			CreatedAt: time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC), UpdatedAt: time.Time{}}},
	}
}

func TestEncodingKeepsEverything(t *testing.T) {
	for _, c := range encodingCases() {
		k, v, err := encode(c)
		if err != nil {
			t.Fatal(err)
		}
		if v[0] != v2 {
			t.Errorf("encode wrote version %#x, want 2", v[0])
		}
		if want := recordKey(c); !bytes.Equal(k, want) {
			t.Errorf("key %q, want %q", k, want)
		}
		got, err := decode(v)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Errorf("decode(encode(%v)) = %v", c, got)
		}
	}
	if _, _, err := encode(instachat.Create{}); err == nil {
		t.Error("encode of an empty create succeeded")
	}
}

// recordKey is the key a create's record has: the token for a chat, the
// token and the chat's varint for a message.
func recordKey(c instachat.Create) []byte {
	if c.Message != nil {
		return binary.AppendVarint([]byte(c.Message.Token), c.Message.Chat)
	}
	return []byte(c.Token())
}

// The chats of one application share a key; its messages have a key per
// chat, so that a busy application spreads over the partitions.
func TestKeysByChat(t *testing.T) {
	at := time.Now().UTC()
	chat := func(n int64) []byte {
		k, _, _ := encode(instachat.Create{Chat: &instachat.Chat{Token: "t", Number: n, CreatedAt: at, UpdatedAt: at}})
		return k
	}
	msg := func(chat, n int64) []byte {
		k, _, _ := encode(instachat.Create{Message: &instachat.Message{Token: "t", Chat: chat, Number: n, CreatedAt: at, UpdatedAt: at}})
		return k
	}
	if !bytes.Equal(chat(1), chat(2)) {
		t.Errorf("chats 1 and 2 of one application keyed %q and %q, want one key", chat(1), chat(2))
	}
	if !bytes.Equal(msg(1, 1), msg(1, 2)) {
		t.Errorf("messages of chat 1 keyed %q and %q, want one key", msg(1, 1), msg(1, 2))
	}
	if bytes.Equal(msg(1, 1), msg(2, 1)) {
		t.Errorf("messages of chats 1 and 2 both keyed %q, want a key per chat", msg(1, 1))
	}
}

// Bytes that are not UTF-8 cross unchanged: version 2 copies text, where
// JSON replaced such bytes with U+FFFD. (The dispatcher refuses them; the
// queue does not rely on it.)
func TestEncodingKeepsBytes(t *testing.T) {
	c := instachat.Create{Message: &instachat.Message{Token: "t", Chat: 1, Number: 1, Body: "a\xffb\x00"}}
	_, v, err := encode(c)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := decode(v); err != nil || got.Message.Body != c.Message.Body {
		t.Errorf("decode = %q, %v; want %q", got.Message.Body, err, c.Message.Body)
	}
}

// The key and the value share one allocation; the key must not be
// writable into the value.
func TestEncodeKeyDoesNotOverlapValue(t *testing.T) {
	k, v, err := encode(encodingCases()[0])
	if err != nil {
		t.Fatal(err)
	}
	if cap(k) != len(k) {
		t.Errorf("key has capacity %d beyond its length %d: an append would overwrite the value", cap(k), len(k))
	}
	before := bytes.Clone(v)
	_ = append(k, "overwrite"...)
	if !bytes.Equal(v, before) {
		t.Error("appending to the key changed the value")
	}
}

// Key and value take one allocation, even with every field at its widest.
func TestEncodeAllocatesOnce(t *testing.T) {
	far := time.Unix(-(1<<62)-1, 999999999).UTC() // seconds that take 10 bytes
	c := instachat.Create{Message: &instachat.Message{Token: "t", Chat: math.MinInt64, Number: math.MaxInt64, Body: "b", CreatedAt: far, UpdatedAt: far}}
	if n := testing.AllocsPerRun(100, func() { encode(c) }); n != 1 {
		t.Errorf("encode allocates %v times, want 1", n)
	}
	_, v, err := encode(c)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := decode(v); err != nil || !reflect.DeepEqual(got, c) {
		t.Errorf("decode(encode(%v)) = %v, %v", c, got, err)
	}
}

// Records in the JSON format of earlier releases, byte for byte as their
// encode wrote them (captured from it), still decode.
func TestDecodesVersion1(t *testing.T) {
	at := time.Date(2026, 11, 26, 19, 2, 10, 354525000, time.UTC)
	const token = "hGRcjXMsmOTMcRFWtaetUw"
	for _, tc := range []struct {
		record string
		want   instachat.Create
	}{
		{
			`{"v":1,"kind":"chat","token":"hGRcjXMsmOTMcRFWtaetUw","chat":7,"name":"général ✓",` +
				`"created_at":"2026-11-26T19:02:10.354525Z","updated_at":"2026-11-26T19:02:10.354525Z"}`,
			instachat.Create{Chat: &instachat.Chat{Token: token, Number: 7, Name: "général ✓", CreatedAt: at, UpdatedAt: at}},
		},
		{
			`{"v":1,"kind":"chat","token":"hGRcjXMsmOTMcRFWtaetUw","chat":8,` +
				`"created_at":"2026-11-26T19:02:10.354525Z","updated_at":"2026-11-26T19:02:10.354526Z"}`,
			instachat.Create{Chat: &instachat.Chat{Token: token, Number: 8, CreatedAt: at, UpdatedAt: at.Add(time.Microsecond)}},
		},
		{
			`{"v":1,"kind":"message","token":"hGRcjXMsmOTMcRFWtaetUw","chat":7,"message":9,` +
				`"body":"line\n\"quoted\" \u003cb\u003e\u0026\u003c/b\u003e \u2028 ✓",` +
				`"created_at":"2026-11-26T19:02:10.354525Z","updated_at":"2026-11-26T19:02:10.354525Z"}`,
			instachat.Create{Message: &instachat.Message{Token: token, Chat: 7, Number: 9,
				Body: "line\n\"quoted\" <b>&</b> \u2028 ✓", CreatedAt: at, UpdatedAt: at}},
		},
		{ // a field added by a later revision of version 1 is ignored
			`{"v":1,"kind":"message","token":"t","chat":1,"message":2,"body":"b",` +
				`"created_at":"2026-11-26T19:02:10.354525Z","updated_at":"2026-11-26T19:02:10.354525Z","later":true}`,
			instachat.Create{Message: &instachat.Message{Token: "t", Chat: 1, Number: 2, Body: "b", CreatedAt: at, UpdatedAt: at}},
		},
	} {
		got, err := decode([]byte(tc.record))
		if err != nil {
			t.Errorf("decode(%s): %v", tc.record, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("decode(%s) = %v, want %v", tc.record, got, tc.want)
		}
	}
	for _, c := range encodingCases() {
		if got, err := decode(encodeV1(t, c)); err != nil || !reflect.DeepEqual(got, c) {
			t.Errorf("decode(encodeV1(%v)) = %v, %v", c, got, err)
		}
	}
}

func TestDecodeRefuses(t *testing.T) {
	_, valid, err := encode(encodingCases()[2])
	if err != nil {
		t.Fatal(err)
	}
	refused := map[string][]byte{
		"empty":                   {},
		"unknown format byte":     append([]byte{0x03}, valid[1:]...),
		"zero format byte":        append([]byte{0x00}, valid[1:]...),
		"JSON, not JSON":          []byte(`{garbage`),
		"JSON of version 2":       []byte(`{"v":2,"kind":"chat"}`),
		"JSON of an unknown kind": []byte(`{"v":1,"kind":"app"}`),
		"binary of an unknown kind": func() []byte {
			v := bytes.Clone(valid)
			v[1] = 'a'
			return v
		}(),
		"nanoseconds out of range": func() []byte {
			// The message's last field, its updated nanoseconds, set to 10⁹.
			_, v, _ := encode(instachat.Create{Message: &instachat.Message{Token: "t", Chat: 1, Number: 1, Body: "b", UpdatedAt: time.Unix(5, 0)}})
			return binary.AppendUvarint(v[:len(v)-1], uint64(time.Second))
		}(),
		"a length beyond the record": {v2, kindMsg, 0xff, 0x01, 't'},
		"a varint beyond 64 bits":    {v2, kindMsg, 1, 't', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
	}
	// Every field is required: each cut short of the end is refused.
	for n := 1; n < len(valid); n++ {
		refused[fmt.Sprintf("truncated to %d bytes", n)] = valid[:n]
	}
	for name, v := range refused {
		if c, err := decode(v); err == nil {
			t.Errorf("%s: decode(%q) = %v, want an error", name, v, c)
		} else if !strings.HasPrefix(err.Error(), "undecodable create") {
			t.Errorf("%s: error %q lacks the prefix the dead-letter reason starts with", name, err)
		} else if name == "nanoseconds out of range" && !strings.Contains(err.Error(), "out of range") {
			t.Errorf("%s: error %q", name, err)
		}
	}
}

// Bytes after the last known field are fields of a later revision of
// version 2, which this one ignores.
func TestDecodeIgnoresLaterFields(t *testing.T) {
	want := encodingCases()[2]
	_, v, err := encode(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decode(append(v, 0x01, 0x02, 0x03))
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("decode with a later field = %v, %v; want %v", got, err, want)
	}
}

// A typical message record is smaller than it was in JSON.
func TestVersion2IsSmaller(t *testing.T) {
	c := messages(1, instachat.NewToken())[0]
	c.Message.Body = strings.Repeat("x", 100)
	_, v, err := encode(c)
	if err != nil {
		t.Fatal(err)
	}
	if old := encodeV1(t, c); len(v) >= len(old)-100 {
		t.Errorf("version 2 takes %d bytes, version 1 %d: want at least 100 fewer", len(v), len(old))
	}
}

// A topic holding records of both versions — an upgrade with records of the
// old release still unconsumed — is consumed whole and in order.
func TestConsumesBothVersions(t *testing.T) {
	c := newCluster(t)
	q := open(t, c, Config{Partitions: 1})
	token := instachat.NewToken()
	want := messages(20, token)
	old := rawClient(t, c)
	for _, m := range want[:10] {
		r := &kgo.Record{Topic: "instachat.creates", Key: []byte(token), Value: encodeV1(t, m)}
		if err := old.ProduceSync(t.Context(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	publish(t, q, want[10:])
	seen := make(chan []instachat.Create, 100)
	consume(t, q, nil, seen)
	got := collect(t, seen, len(want))
	if !reflect.DeepEqual(got, want) {
		t.Errorf("consumed %v,\nwant %v", got, want)
	}
}

// Whatever the bytes, decode answers without panicking, and a record it
// accepts encodes back to one that decodes the same (times in UTC: a
// version 1 record may carry another offset).
func FuzzDecode(f *testing.F) {
	for _, c := range encodingCases() {
		_, v, err := encode(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(v)
		f.Add(encodeV1(f, c))
	}
	f.Add([]byte{v2, kindChat})
	f.Add([]byte(`{"v":1,"kind":"chat","token":"t","chat":1,"created_at":"2026-11-26T20:02:10.5+01:00","updated_at":"2026-11-26T19:02:10Z"}`))
	f.Fuzz(func(t *testing.T, v []byte) {
		c, err := decode(v)
		if err != nil {
			return
		}
		_, again, err := encode(c)
		if err != nil {
			t.Fatalf("decode(%q) = %v, which does not encode: %v", v, c, err)
		}
		if c2, err := decode(again); err != nil || !reflect.DeepEqual(c2, inUTC(c)) {
			t.Fatalf("decode(%q) = %v, but after encoding %v, %v", v, c, c2, err)
		}
	})
}

// inUTC returns c with its times in UTC.
func inUTC(c instachat.Create) instachat.Create {
	if ch := c.Chat; ch != nil {
		u := *ch
		u.CreatedAt, u.UpdatedAt = u.CreatedAt.UTC(), u.UpdatedAt.UTC()
		return instachat.Create{Chat: &u}
	}
	m := *c.Message
	m.CreatedAt, m.UpdatedAt = m.CreatedAt.UTC(), m.UpdatedAt.UTC()
	return instachat.Create{Message: &m}
}

func BenchmarkEncode(b *testing.B) {
	c := benchmarkCreate()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := encode(c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	_, v, err := encode(benchmarkCreate())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decode(v); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeV1 decodes the JSON that earlier releases wrote.
func BenchmarkDecodeV1(b *testing.B) {
	v := encodeV1(b, benchmarkCreate())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decode(v); err != nil {
			b.Fatal(err)
		}
	}
}

// benchmarkCreate is a message as instachat bench creates them: a
// 100-byte body, a time truncated to the microsecond.
func benchmarkCreate() instachat.Create {
	c := messages(1, instachat.NewToken())[0]
	c.Message.Number = 123456
	c.Message.Body = strings.Repeat("lorem ipsum ", 9)[:100]
	return c
}
