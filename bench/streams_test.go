package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	instachathttp "github.com/instachat/instachat/http"
	"github.com/instachat/instachat/server"
)

// runStreams runs the streams bench with -json and returns its report.
func runStreams(t *testing.T, args ...string) StreamsReport {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if err := Streams(t.Context(), append(args, "-json"), &stdout, &stderr); err != nil {
		t.Fatalf("Streams %v: %v\n%s", args, err, stderr.String())
	}
	var r StreamsReport
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("-json output does not parse: %v\n%s", err, stdout.String())
	}
	return r
}

// TestStreamsAccounting runs the whole scenario briefly against a real
// server: every event of every answered create reaches every stream of its
// chat, SSE and WebSocket, exactly once and in order, and the closed-loop
// phases alternate between the streams attached and none.
func TestStreamsAccounting(t *testing.T) {
	u := startServer(t, t.TempDir()).URL()
	r := runStreams(t, "-url", u, "-s", "12", "-ws", "3", "-chats", "2", "-rate", "40", "-d", "1s", "-c", "8",
		"-settle", "0s", "-drain", "5s", "-ratio-d", "200ms", "-ratio-rounds", "2")
	if r.Attach.Connected != 12 || len(r.Attach.Refused) > 0 {
		t.Errorf("attach = %+v, want 12 connected", r.Attach)
	}
	if m := r.Memory; m.Error != "" || m.ServerRSSBefore <= 0 || m.ServerRSSAfter <= 0 || m.GoroutinesAfter <= m.GoroutinesBefore {
		t.Errorf("memory = %+v, want the server's figures, more goroutines with the streams", m)
	}
	d := r.Delivery
	if d == nil {
		t.Fatal("no delivery report")
	}
	// A slow machine may leave some of the 40 due unsent (missed); every
	// one sent must be answered.
	if s := d.Creates.Schedule; s == nil || s.Scheduled != 40 || d.Creates.Requests == 0 || d.Creates.Requests != s.Sent || len(d.Creates.Errors) > 0 {
		t.Errorf("creates = %+v, schedule %+v; want 40 due, every one sent answered", d.Creates, d.Creates.Schedule)
	}
	// Two chats of six streams each.
	if d.Answered != d.Creates.Requests || d.Expected != d.Answered*6 || d.Delivered != d.Expected || d.Missing != 0 {
		t.Errorf("answered %d of %d, expected %d, delivered %d, missing %d; want all answered, 6 events each, all delivered",
			d.Answered, d.Creates.Requests, d.Expected, d.Delivered, d.Missing)
	}
	if d.Gaps != 0 || d.Duplicates != 0 || d.Unanswered != 0 || len(d.Ended) > 0 {
		t.Errorf("gaps %d, duplicates %d, unanswered %d, ended %v; want none", d.Gaps, d.Duplicates, d.Unanswered, d.Ended)
	}
	if l := d.Latency; !(0 <= l.P50 && l.P50 <= l.P99 && l.P99 <= l.Max) || d.PerSecond <= 0 {
		t.Errorf("latency %+v, %v/s: want ordered percentiles and a rate", l, d.PerSecond)
	}
	// A request goes out before its answer comes back.
	if l, s := d.Latency, d.FromSent; !(0 < s.P50 && l.P50 <= s.P50 && l.Max <= s.Max) {
		t.Errorf("from the answer %+v, from the request %+v: want the second later", l, s)
	}
	ra := r.Ratio
	if ra == nil || len(ra.Phases) != 4 {
		t.Fatalf("ratio = %+v, want 4 phases", ra)
	}
	for i, want := range []int{12, 0, 0, 12} { // with, none; none, with
		ph := ra.Phases[i]
		if ph.Subscribers != want || ph.Creates.Requests == 0 || len(ph.Creates.Errors) > 0 || (want > 0) != (ph.Delivered > 0) || ph.Ended != 0 {
			t.Errorf("phase %d = %+v, want %d streams, creates, events only with streams", i+1, ph, want)
		}
	}
	if ra.WithMedian <= 0 || ra.NoneMedian <= 0 || ra.Ratio <= 0 {
		t.Errorf("ratio = %+v, want medians and their ratio", ra)
	}
}

// TestStreamsQuiet: quiet streams sit on chats of their own and receive
// nothing of the creates.
func TestStreamsQuiet(t *testing.T) {
	u := startServer(t, t.TempDir()).URL()
	r := runStreams(t, "-url", u, "-s", "4", "-chats", "2", "-quiet", "-rate", "20", "-d", "500ms", "-c", "4", "-settle", "0s", "-drain", "200ms")
	d := r.Delivery
	if r.Attach.Connected != 4 || d == nil || d.Answered == 0 || d.Expected != 0 || d.Delivered != 0 {
		t.Errorf("attach %+v, delivery %+v; want 4 streams, creates answered, no events expected or delivered", r.Attach, d)
	}
}

// TestStreamsRefused: streams over the server's per-application cap are
// reported refused, by status, and the rest held.
func TestStreamsRefused(t *testing.T) {
	u := startServer(t, t.TempDir(), func(c *server.Config) { c.MaxSubscribersPerToken = 5 }).URL()
	r := runStreams(t, "-url", u, "-s", "8", "-ws", "1", "-d", "0", "-settle", "0s")
	if r.Attach.Connected != 5 || r.Attach.Refused["status 503"] != 3 || r.Delivery != nil || r.Ratio != nil {
		t.Errorf("attach = %+v, delivery %v, ratio %v; want 5 connected, 3 refused with 503, nothing else", r.Attach, r.Delivery, r.Ratio)
	}
}

// TestStreamsEnded: streams the server ends are counted with why, those
// the bench closes are not.
func TestStreamsEnded(t *testing.T) {
	s := startServer(t, t.TempDir())
	base, _ := url.Parse(s.URL())
	app, err := instachathttp.NewClient(s.URL(), http.DefaultClient).CreateApplication(t.Context(), "ended")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := instachathttp.NewClient(s.URL(), http.DefaultClient).CreateChat(t.Context(), app.Token, "", ""); err != nil {
		t.Fatal(err)
	}
	p := attach(t.Context(), base, app.Token, 1, 1, 4, 1, 2, nil, http.DefaultClient)
	if p.connected() != 4 {
		t.Fatalf("%d connected, want 4: %v", p.connected(), p.snapshot(p.refused))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	p.wg.Wait()
	ended := p.snapshot(p.ended)
	var sse, ws int64
	for why, n := range ended {
		switch {
		case strings.HasPrefix(why, "ended: the server is shutting down"):
			sse += n
		case why == "websocket close 1001":
			ws += n
		}
	}
	if sse != 3 || ws != 1 {
		t.Errorf("ended = %v, want 3 SSE streams ended with the shutdown's reason and 1 WebSocket with 1001", ended)
	}
	p.close()
	if p.endedCount() != 4 {
		t.Errorf("closing the pool changed the count: %v", p.snapshot(p.ended))
	}
}

func TestParseMessageLocation(t *testing.T) {
	for loc, want := range map[string][2]int64{
		"/api/v1/applications/abc/chats/3/messages/17": {3, 17},
		"/api/v1/applications/abc/chats/12/messages/1": {12, 1},
		"/api/v1/applications/abc/chats/x/messages/1":  {0, 0},
		"/api/v1/applications/abc/chats/1/messages/":   {0, 0},
		"": {0, 0},
	} {
		c, n, ok := parseMessageLocation(loc)
		if ok != (want[0] != 0) || int64(c) != want[0] || n != want[1] {
			t.Errorf("%q: %d, %d, %v; want %v", loc, c, n, ok, want)
		}
	}
}

// TestLineReader: lines longer than the buffer arrive whole, CRLF or LF.
func TestLineReader(t *testing.T) {
	long := strings.Repeat("x", 3000)
	in := "event: a\r\ndata: " + long + "\n\n: c\n"
	lr := &lineReader{r: newSmallReader(strings.NewReader(in))}
	for _, want := range []string{"event: a", "data: " + long, "", ": c"} {
		got, err := lr.next()
		if err != nil || string(got) != want {
			t.Fatalf("next = %.30q, %v; want %.30q", got, err, want)
		}
	}
	if _, err := lr.next(); err != io.EOF {
		t.Errorf("at the end: %v, want EOF", err)
	}
	if jsonInt([]byte(`{"event":"message.created","revision":42,"message":{"number":41,"body":"b"}}`), `"number":`) != 41 {
		t.Error("jsonInt did not find the number")
	}
}

func newSmallReader(r io.Reader) *bufio.Reader { return bufio.NewReaderSize(r, 16) }

// TestStreamsBadFlags: each refusal names what is wrong, before any
// connection is made.
func TestStreamsBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-url", "ftp://x"}, "-url"},
		{[]string{"-s", "2", "-ws", "3"}, "-ws"},
		{[]string{"-chats", "0"}, "-chats"},
		{[]string{"-rate", "0"}, "-rate"},
		{[]string{"-d", "-1s"}, "-d"},
		{[]string{"-url", "https://x", "-s", "2", "-ws", "1"}, "-ws"},
		{[]string{"extra"}, "unexpected"},
	} {
		err := Streams(t.Context(), tc.args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error naming %s", tc.args, err, tc.want)
		}
	}
}

// The admin token comes from the environment when -admin-token is not
// given, but never as the flag's default, which -h prints.
func TestStreamsHelpHidesTheAdminToken(t *testing.T) {
	const secret = "admin-token-that-help-must-not-print"
	t.Setenv("INSTACHAT_ADMIN_TOKEN", secret)
	var help strings.Builder
	parseStreamsOptions([]string{"-h"}, &help)
	if strings.Contains(help.String(), secret) {
		t.Errorf("streams -h printed the admin token:\n%s", help.String())
	}
	o, err := parseStreamsOptions(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.adminToken != secret {
		t.Errorf("admin token %q, want the environment's", o.adminToken)
	}
}
