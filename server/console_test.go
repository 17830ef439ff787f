package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/fetch"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/console"
	"github.com/instachat/instachat/internal/browser"
	"github.com/instachat/instachat/server"
)

// The console without a browser: what is served, where, with which headers.

func TestConsoleIsServedWithAStrictPolicy(t *testing.T) {
	r := start(t, t.TempDir())
	for _, c := range []struct{ path, contentType string }{
		{"/", "text/html; charset=utf-8"},
		{"/console/app.js", "text/javascript; charset=utf-8"},
		{"/console/api.js", "text/javascript; charset=utf-8"},
		{"/console/style.css", "text/css; charset=utf-8"},
		{"/console/icon.svg", "image/svg+xml"},
	} {
		res := rawGet(t, r.URL()+c.path, nil)
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != c.contentType {
			t.Errorf("GET %s: %d %q, want 200 %q", c.path, res.StatusCode, res.Header.Get("Content-Type"), c.contentType)
		}
		if got := res.Header.Get("Content-Security-Policy"); got != console.ContentSecurityPolicy {
			t.Errorf("GET %s: Content-Security-Policy %q", c.path, got)
		}
		if res.Header.Get("X-Content-Type-Options") != "nosniff" || res.Header.Get("Cache-Control") != "no-cache" {
			t.Errorf("GET %s: nosniff %q, Cache-Control %q", c.path, res.Header.Get("X-Content-Type-Options"), res.Header.Get("Cache-Control"))
		}
		etag := res.Header.Get("ETag")
		if again := rawGet(t, r.URL()+c.path, http.Header{"If-None-Match": {etag}}); etag == "" || again.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with If-None-Match %q: %d, want 304", c.path, etag, again.StatusCode)
		}
	}
	for _, p := range []string{"/console/", "/console/index.html", "/console/nope.js"} {
		if st, v := r.do(t, "GET", p, "", ""); st != http.StatusNotFound && st != http.StatusBadRequest || v["error"] == nil {
			t.Errorf("GET %s: %d %v, want a JSON 404 (or 400 for a path to clean)", p, st, v)
		}
	}
	// A path with a ".." segment is refused as unclean, never resolved.
	if res := rawGet(t, r.URL()+"/console/../go.mod", nil); res.StatusCode != http.StatusBadRequest {
		t.Errorf("GET /console/../go.mod: %d, want 400", res.StatusCode)
	}
	// The API keeps its JSON errors beside the console.
	if st, v := r.do(t, "GET", "/nope", "", ""); st != http.StatusNotFound || v["error"] == nil {
		t.Errorf("GET /nope: %d %v, want a JSON 404", st, v)
	}
}

func TestConsoleIsServedByTheAPIRoleOnly(t *testing.T) {
	cfg := productionConfig(t)
	for _, c := range []struct {
		roles  server.Roles
		status int
	}{{server.Roles{API: true}, http.StatusOK}, {server.Roles{Dispatcher: true}, http.StatusNotFound}} {
		cfg.Roles = c.roles
		r := startProduction(t, cfg)
		if res := rawGet(t, r.URL()+"/", nil); res.StatusCode != c.status {
			t.Errorf("roles %s: GET / %d, want %d", c.roles, res.StatusCode, c.status)
		}
	}
}

// TestConsoleFilesHoldNoInlineCodeOrHTMLSinks guards what the policy
// enforces in the browser, and what the browser tests could miss on a path
// they do not take: no inline script or style in the page, and no script
// that parses strings as HTML or code.
func TestConsoleFilesHoldNoInlineCodeOrHTMLSinks(t *testing.T) {
	dir := filepath.Join("..", "console", "static")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	inline := regexp.MustCompile(`(?i)<style|\sstyle=|\son[a-z]+=|javascript:`)
	script := regexp.MustCompile(`(?is)<script([^>]*)>(.*?)</script>`)
	sinks := regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|` +
		`setAttribute\(\s*'style'|\.src\s*=|DOMParser|createContextualFragment`)
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		switch filepath.Ext(e.Name()) {
		case ".html":
			if m := inline.Find(raw); m != nil {
				t.Errorf("%s has inline code or style: %q", e.Name(), m)
			}
			tags := script.FindAllSubmatch(raw, -1)
			if len(tags) != bytes.Count(bytes.ToLower(raw), []byte("<script")) {
				t.Errorf("%s has a script tag that is not closed", e.Name())
			}
			for _, m := range tags {
				if !bytes.Contains(m[1], []byte(`src="/console/`)) || len(bytes.TrimSpace(m[2])) > 0 {
					t.Errorf("%s has an inline script: %q", e.Name(), m[0])
				}
			}
		case ".js":
			if m := sinks.Find(raw); m != nil {
				t.Errorf("%s uses %q", e.Name(), m)
			}
			if bytes.Contains(raw, []byte("http://")) || bytes.Contains(raw, []byte("https://")) {
				t.Errorf("%s names another origin", e.Name())
			}
		}
	}
}

func rawGet(t *testing.T, url string, h http.Header) *http.Response {
	t.Helper()
	return rawRequest(t, "GET", url, h)
}

// rawRequest sends a bodiless request with the headers h through
// testClient, reads its answer's body away and returns the answer.
func rawRequest(t *testing.T, method, url string, h http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	res, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}

// ---- in the browser --------------------------------------------------------

// tab is one page of the console in a browser context of its own, recording
// what must never happen: uncaught exceptions, dialogs, policy violations.
type tab struct {
	t    *testing.T
	name string
	ctx  context.Context
	mu   sync.Mutex
	bad  []string
}

func openConsole(t *testing.T, b context.Context, name, url string) *tab {
	t.Helper()
	tb := &tab{t: t, name: name, ctx: browser.Tab(t, b)}
	if _, err := chromedp.Call(tb.ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	go func() {
		for ev, err := range chromedp.Events(tb.ctx, cdpruntime.ExceptionThrown) {
			if err != nil {
				return
			}
			d := ev.ExceptionDetails
			desc := d.Text
			if d.Exception != nil {
				desc += " " + d.Exception.Description
			}
			tb.record("exception: " + desc)
		}
	}()
	go func() {
		for ev, err := range chromedp.Events(tb.ctx, page.JavascriptDialogOpening) {
			if err != nil {
				return
			}
			tb.record(fmt.Sprintf("a %s dialog opened: %q", ev.Type, ev.Message))
			chromedp.Call(tb.ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{})
		}
	}()
	go func() {
		for ev, err := range chromedp.Events(tb.ctx, cdplog.EntryAdded) {
			if err != nil {
				return
			}
			if strings.Contains(ev.Entry.Text, "Content Security Policy") || strings.Contains(ev.Entry.Text, "Refused to") {
				tb.record("policy: " + ev.Entry.Text)
			}
		}
	}()
	tb.run(chromedp.Navigate(url))
	tb.wait(`document.readyState === 'complete'`, 20*time.Second)
	return tb
}

func (tb *tab) record(s string) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.bad = append(tb.bad, s)
}

// forget drops the n recorded problems that start with prefix, which the
// test provoked on purpose, once they were reported (the browser's log
// entries arrive on their own).
func (tb *tab) forget(prefix string, n int) {
	tb.t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		tb.mu.Lock()
		seen := 0
		for _, s := range tb.bad {
			if strings.HasPrefix(s, prefix) {
				seen++
			}
		}
		if seen >= n || time.Now().After(deadline) {
			tb.bad = slices.DeleteFunc(tb.bad, func(s string) bool { return strings.HasPrefix(s, prefix) })
			tb.mu.Unlock()
			if seen < n {
				tb.t.Errorf("%s: %d problems %q reported, want %d", tb.name, seen, prefix, n)
			}
			return
		}
		tb.mu.Unlock()
	}
}

// clean fails the test if anything that must never happen happened.
func (tb *tab) clean() {
	tb.t.Helper()
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for _, s := range tb.bad {
		tb.t.Errorf("%s: %s", tb.name, s)
	}
	tb.bad = nil
}

func (tb *tab) run(actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.t.Fatalf("%s: %v", tb.name, err)
	}
}

// js evaluates a JavaScript expression in the page.
func js[T any](tb *tab, expr string) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.t.Fatalf("%s: evaluate %s: %v", tb.name, expr, err)
	}
	return v
}

// until polls a JavaScript predicate and reports whether it held in time.
func (tb *tab) until(expr string, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(tb.ctx, timeout+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
	return err == nil
}

// wait is until that fails the test, showing the page's state.
func (tb *tab) wait(expr string, timeout time.Duration) {
	tb.t.Helper()
	if !tb.until(expr, timeout) {
		tb.t.Fatalf("%s: after %v still not %s; page: %s", tb.name, timeout, expr, tb.describe())
	}
}

func (tb *tab) describe() string {
	ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({
		notice: document.getElementById('notice').hidden ? '' : document.getElementById('notice-text').textContent,
		state: document.querySelector('[data-testid=connection-state]').dataset.state,
		title: document.getElementById('chat-title').textContent,
		items: [...document.querySelectorAll('[data-testid=message-item]')].slice(-5)
			.map(e => e.dataset.number + ':' + e.dataset.state + ':' + (e.querySelector('.body')||{}).textContent),
		count: document.querySelectorAll('[data-testid=message-item]').length})`))
	return s
}

// scrollToStart scrolls the message list to its top, at most tries times
// 200 ms apart, until the console shows the start of the chat, then fails
// the test unless it shows within timeout.
func (tb *tab) scrollToStart(tries int, timeout time.Duration) {
	tb.t.Helper()
	for range tries {
		if js[bool](tb, `!document.getElementById('start').hidden`) {
			break
		}
		js[bool](tb, `(document.getElementById('scroller').scrollTop = 0, true)`)
		time.Sleep(200 * time.Millisecond)
	}
	tb.wait(`!document.getElementById('start').hidden`, timeout)
}

// typeInto replaces the value of a field by typing, as a person would.
func (tb *tab) typeInto(sel, text string) {
	tb.t.Helper()
	tb.run(chromedp.WaitVisible(chromedp.CSS(sel)))
	js[bool](tb, fmt.Sprintf(`(document.querySelector(%q).value = '', true)`, sel))
	tb.run(chromedp.SendKeys(chromedp.CSS(sel), text))
}

func (tb *tab) click(sel string) {
	tb.t.Helper()
	tb.run(chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.Click(chromedp.CSS(sel)))
}

// bodies lists the open chat's messages as shown, "number:body", in order.
func (tb *tab) bodies() []string {
	return js[[]string](tb, `[...document.querySelectorAll('[data-testid=message-list] [data-testid=message-item][data-number]')]
		.map(e => e.dataset.number + ':' + e.querySelector('.body').textContent)`)
}

func (tb *tab) setOffline(offline bool) {
	tb.t.Helper()
	throughput := -1.0
	if _, err := chromedp.Call(tb.ctx, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
		MatchedNetworkConditions: []*network.Conditions{{Offline: offline, DownloadThroughput: throughput, UploadThroughput: throughput}},
	}); err != nil {
		tb.t.Fatal(err)
	}
	if _, err := chromedp.Call(tb.ctx, network.OverrideNetworkState, network.OverrideNetworkStateParams{
		Offline: offline, DownloadThroughput: throughput, UploadThroughput: throughput,
	}); err != nil {
		tb.t.Fatal(err)
	}
}

func (tb *tab) screenshot(name string, width, height int64) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, height)); err != nil {
		tb.t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // let the layout settle at the new width
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		tb.t.Fatal(err)
	}
	img, err := png.DecodeConfig(bytes.NewReader(shot))
	if err != nil || int64(img.Width) != width || int64(img.Height) != height {
		tb.t.Fatalf("screenshot %s: %v, %dx%d, want %dx%d", name, err, img.Width, img.Height, width, height)
	}
	dir := tb.t.TempDir()
	if os.Getenv("INSTACHAT_UPDATE_SCREENSHOTS") == "1" {
		dir = filepath.Join("..", "docs", "img")
	}
	if err := os.WriteFile(filepath.Join(dir, name), shot, 0o644); err != nil {
		tb.t.Fatal(err)
	}
}

// hasStreams reports whether the server streams the application's events
// (a chat just created through a 202 dispatcher may not be readable yet).
func hasStreams(t *testing.T, r *running, token string) bool {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/api/v1/applications/%s/events", r.URL(), token), nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	res.Body.Close()
	return res.StatusCode == http.StatusOK && strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream")
}

const (
	firstBody = "Supercalifragilistic morning"
	xssBody   = `<img src=x onerror=alert(1)>`
)

// TestConsoleInABrowser drives the embedded server's console in Chromium.
func TestConsoleInABrowser(t *testing.T) {
	b := browser.Start(t)
	r := start(t, t.TempDir())
	consoleFlow(t, b, r, r, true)
}

// TestProductionConsoleInABrowser runs the two-window flow against the
// production topology: two api,dispatcher fronts and a worker sharing
// MySQL, Redis and a kfake cluster, window A on one front and B on the
// other, so what B sees of A crossed processes (the worker's commit, Redis
// fan-out); creates answer 202 and are stored by the worker.
func TestProductionConsoleInABrowser(t *testing.T) {
	b := browser.Start(t)
	cfg := productionConfig(t)
	var fronts []*running
	for _, roles := range []server.Roles{{API: true, Dispatcher: true}, {API: true, Dispatcher: true}, {Worker: true}} {
		c := cfg
		c.Roles = roles
		if r := startProduction(t, c); roles.API {
			fronts = append(fronts, r)
		}
	}
	consoleFlow(t, b, fronts[0], fronts[1], false)
}

// consoleFlow opens window A on r and window B on rb (the same server, or
// another front of it).
func consoleFlow(t *testing.T, b context.Context, r, rb *running, full bool) {
	ctx := t.Context()
	a := openConsole(t, b, "A", r.URL()+"/")

	// Create an application in the page; its token is kept, not put in the URL.
	a.typeInto("#new-app-name", "Console demo")
	a.click("#create-app button[type=submit]")
	a.wait(`document.querySelector('[data-testid=app-token]').value.length > 0 && !document.getElementById('sidebar').hidden`, 10*time.Second)
	token := js[string](a, `document.querySelector('[data-testid=app-token]').value`)
	if !instachat.ValidToken(token) {
		t.Fatalf("the token field shows %q", token)
	}
	if stored := js[string](a, `localStorage.getItem('instachat.console.token')`); stored != token {
		t.Errorf("localStorage holds %q, want the token", stored)
	}

	// Create a chat in the page; it opens.
	a.typeInto("#new-chat-name", "general")
	a.click("#create-chat button[type=submit]")
	a.wait(`document.querySelectorAll('[data-testid=chat-item]').length === 1 &&
		document.getElementById('chat-title').textContent === 'general'`, 10*time.Second)
	if _, err := r.client.FindChat(ctx, token, 1); err != nil && r.created == http.StatusCreated {
		t.Fatalf("the chat made in the page: %v", err)
	}
	if u := js[string](a, `location.href`); strings.Contains(u, token) {
		t.Errorf("the page's URL %q holds the token", u)
	}
	live := hasStreams(t, r, token)
	if !live {
		t.Log("this server has no event streams yet: the live parts are not tested")
	}

	// A second browser context opens the application by its token.
	bt := openConsole(t, b, "B", rb.URL()+"/")
	bt.typeInto("[data-testid=app-token]", token)
	bt.click("#open-app button[type=submit]")
	bt.wait(`document.querySelectorAll('[data-testid=chat-item]').length === 1`, 10*time.Second)
	bt.click("[data-testid=chat-item] button")
	bt.wait(`!document.getElementById('chat').hidden && document.getElementById('chat-title').textContent === 'general'`, 10*time.Second)
	if live {
		a.wait(`document.querySelector('[data-testid=connection-state]').dataset.state === 'live'`, 10*time.Second)
		bt.wait(`document.querySelector('[data-testid=connection-state]').dataset.state === 'live'`, 10*time.Second)
	}

	// A posts in the page: pending, then stored; B sees it within a second.
	a.typeInto("[data-testid=composer]", "hello from A")
	a.click("[data-testid=send]")
	// Without streams, a 202 (production) stays "accepted": the event that
	// says it is stored never comes.
	done := `['stored']`
	if !live && r.created == http.StatusAccepted {
		done = `['accepted']`
	}
	a.wait(`[...document.querySelectorAll('[data-testid=message-item]')]
		.some(e => `+done+`.includes(e.dataset.state) &&
		e.querySelector('.body').textContent === 'hello from A')`, 15*time.Second)
	if live {
		if !bt.until(`[...document.querySelectorAll('[data-testid=message-item]')]
			.some(e => e.querySelector('.body').textContent === 'hello from A')`, time.Second) {
			t.Errorf("B did not show A's message within 1 s of its being stored: %s", bt.describe())
		}
	}
	var msgs []*instachat.Message
	var err error
	for deadline := time.Now().Add(10 * time.Second); len(msgs) == 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if msgs, err = r.client.AllMessages(ctx, token, 1); err != nil {
			t.Fatal(err)
		}
	}
	if len(msgs) != 1 || msgs[0].Body != "hello from A" {
		t.Fatalf("stored: %v, want the one message A sent", msgs)
	}

	if live {
		liveFlow(t, a, bt, r, token)
	}
	if full {
		consoleDetails(t, a, bt, r, token, live)
	}
	if live && allowsDelete(t, r, token) {
		deletesInTheConsole(t, a, bt, r, token)
	}
	a.clean()
	bt.clean()
}

// deletesInTheConsole deletes, through the API, the chat window B has open
// and then the application: B closes the chat, both windows close the
// application and forget its token as the stream's application.deleted
// arrives, each saying why, and stop their feeds rather than reconnect.
func deletesInTheConsole(t *testing.T, a, bt *tab, r *running, token string) {
	bt.click(`[data-testid=chat-item][data-number="1"] button`)
	bt.wait(`document.getElementById('chat-title').textContent === 'general' &&
		document.querySelector('[data-testid=connection-state]').dataset.state === 'live'`, 10*time.Second)
	if st, v := r.do(t, "DELETE", "/api/v1/applications/"+token+"/chats/1", "", ""); st != http.StatusNoContent {
		t.Fatalf("delete the chat: %d %v", st, v)
	}
	for _, tb := range []*tab{a, bt} {
		tb.wait(`!document.querySelector('[data-testid=chat-item][data-number="1"]')`, 10*time.Second)
	}
	bt.wait(`document.getElementById('chat').hidden && !document.getElementById('notice').hidden`, 10*time.Second)
	if st, v := r.do(t, "DELETE", "/api/v1/applications/"+token, "", ""); st != http.StatusNoContent {
		t.Fatalf("delete the application: %d %v", st, v)
	}
	for _, tb := range []*tab{a, bt} {
		// Within the first reconnect's backoff, which ended in a refusal
		// ("application not found") before the console read the event.
		tb.wait(`document.getElementById('sidebar').hidden &&
			document.getElementById('notice-text').textContent === 'This application was deleted.' &&
			localStorage.getItem('instachat.console.token') === null &&
			document.querySelector('[data-testid=app-connection-state]').dataset.state === 'stopped'`, 5*time.Second)
	}
}

// liveFlow is what needs the event streams: messages and edits from the
// other window and from the API, and the resume after a network drop.
func liveFlow(t *testing.T, a, bt *tab, r *running, token string) {
	ctx := t.Context()
	// Bodies from the API: one to search, one that would be code as HTML.
	for _, body := range []string{firstBody, xssBody} {
		if _, _, err := r.client.CreateMessage(ctx, token, 1, body, ""); err != nil {
			t.Fatal(err)
		}
	}
	for _, tb := range []*tab{a, bt} {
		tb.wait(fmt.Sprintf(`[...document.querySelectorAll('[data-testid=message-item] .body')]
			.some(e => e.textContent === %q)`, xssBody), 10*time.Second)
		if n := js[int](tb, `document.querySelectorAll('[data-testid=message-list] img').length`); n != 0 {
			t.Errorf("%s: the message list holds %d img elements", tb.name, n)
		}
	}

	// B loses the network while 20 messages are posted; back online, it
	// shows all 20, once each, in order.
	bt.setOffline(true)
	bt.wait(`['offline', 'reconnecting'].includes(document.querySelector('[data-testid=connection-state]').dataset.state)`, 10*time.Second)
	for i := range 20 {
		if _, _, err := r.client.CreateMessage(ctx, token, 1, fmt.Sprintf("while B was away %02d", i+1), ""); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(500 * time.Millisecond)
	if got := bt.bodies(); slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, "while B was away") }) {
		t.Fatalf("B received messages while offline, so the test did not cut its stream: %v", got)
	}
	bt.setOffline(false)
	bt.wait(`document.querySelector('[data-testid=connection-state]').dataset.state === 'live' &&
		document.querySelectorAll('[data-testid=message-item][data-number]').length >= 23`, 20*time.Second)
	all, err := r.client.AllMessages(ctx, token, 1)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, m := range all {
		want = append(want, fmt.Sprintf("%d:%s", m.Number, m.Body))
	}
	if got := bt.bodies(); !slices.Equal(got, want) {
		t.Errorf("B after coming back shows\n%v\nwant\n%v", got, want)
	}
	if got := a.bodies(); !slices.Equal(got, want) {
		t.Errorf("A shows\n%v\nwant\n%v", got, want)
	}

	// The counts in the chat list follow (re-read every 5 s).
	a.wait(fmt.Sprintf(`document.querySelector('[data-testid=chat-item][data-number="1"] .count')
		?.textContent === '%d'`, len(all)), 10*time.Second)

	// B answers with the keyboard alone: Enter in the composer sends.
	bt.run(chromedp.Focus(chromedp.CSS("[data-testid=composer]")),
		chromedp.SendKeys(chromedp.CSS("[data-testid=composer]"), "typed in B"), chromedp.KeyEvent("\r"))
	a.wait(`[...document.querySelectorAll('[data-testid=message-item] .body')].some(e => e.textContent === 'typed in B')`, 10*time.Second)

	// A chat made by another client appears in both lists (the
	// application's feed; the 5 s count refresh adds no chats).
	if _, _, err := r.client.CreateChat(ctx, token, "from elsewhere", ""); err != nil {
		t.Fatal(err)
	}
	for _, tb := range []*tab{a, bt} {
		if !tb.until(`[...document.querySelectorAll('[data-testid=chat-item] .chat-name')]
			.some(e => e.textContent === 'from elsewhere')`, 4*time.Second) {
			t.Errorf("%s: a chat created by the API did not appear within 4 s", tb.name)
		}
	}

	// An edit in A reaches B.
	a.run(chromedp.Click(chromedp.CSS(`[data-testid=message-item][data-number="1"] [data-action=edit]`)))
	a.typeInto(`[data-testid=message-item][data-number="1"] textarea`, "hello from A, edited")
	a.click(`[data-testid=message-item][data-number="1"] button[type=submit]`)
	bt.wait(`document.querySelector('[data-testid=message-item][data-number="1"] .body')
		?.textContent === 'hello from A, edited'`, 10*time.Second)

	// A delete in A (once the server has deletes) leaves B's copy equal to
	// the chat's messages.
	if allowsDelete(t, r, token) {
		a.click(`[data-testid=message-item][data-number="3"] [data-action=delete]`)
		a.click(`[data-testid=message-item][data-number="3"] .danger`)
		bt.wait(`!document.querySelector('[data-testid=message-item][data-number="3"]')`, 10*time.Second)
		left, err := r.client.AllMessages(ctx, token, 1)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, m := range left {
			want = append(want, fmt.Sprintf("%d:%s", m.Number, m.Body))
		}
		for _, tb := range []*tab{a, bt} {
			if got := tb.bodies(); !slices.Equal(got, want) {
				t.Errorf("%s after the delete shows\n%v\nwant\n%v", tb.name, got, want)
			}
		}
	}

	// Search highlights what matched, by the server's rule.
	a.typeInto("[data-testid=search]", "CALIfrag mo")
	a.click("#search-form button[type=submit]")
	a.wait(`document.querySelectorAll('[data-testid=search-result]').length === 1`, 10*time.Second)
	marks := js[[]string](a, `[...document.querySelectorAll('[data-testid=search-result] mark')].map(m => m.textContent)`)
	if !slices.Equal(marks, []string{"califrag", "mo"}) {
		t.Errorf("search marks %q, want [califrag mo] (mo only at the start of a word)", marks)
	}
}

// consoleDetails covers the rest on the embedded server: the rule and cursor
// encoders against Go's, scrolling back to the first message, reload,
// errors, deletes, and the screenshots.
func consoleDetails(t *testing.T, a, bt *tab, r *running, token string, live bool) {
	ctx := t.Context()

	// The highlighter applies instachat.MatchesTerm's rule.
	cases := []struct {
		Body string `json:"body"`
		Term string `json:"term"`
	}{
		{"Supercalifragilistic", "cal"}, {"this is hi", "hi"}, {"this", "hi"}, {"ünïcode Über", "üb"},
		{"ÜBER", "über"}, {"a-b", "b"}, {"x1y", "1y"}, {"日本語テキスト", "本語"}, {"İstanbul", "is"},
		{"ΣΑΣ", "σας"}, {"emoji 😀x", "x"}, {"😀abc", "abc"}, {"abc", "abcd"}, {"word_under", "under"},
	}
	raw, _ := json.Marshal(cases)
	got := js[[]bool](a, fmt.Sprintf(`import('/console/highlight.js').then(h =>
		%s.map(c => h.matchRanges(c.body, h.parseTerms(c.term)).length > 0))`, raw))
	for i, c := range cases {
		want := instachat.MatchesTerm(c.Body, strings.ToLower(c.Term))
		if got[i] != want {
			t.Errorf("highlight of %q in %q: %v, instachat.MatchesTerm says %v", c.Term, c.Body, got[i], want)
		}
	}
	// The cursors the console starts pages with are the server's.
	cursors := js[[]string](a, `import('/console/api.js').then(api => [1, 9, 10, 63, 64, 999, 123456789].map(api.cursorAfter))`)
	for i, n := range []int64{1, 9, 10, 63, 64, 999, 123456789} {
		if cursors[i] != instachat.EncodeCursor(n) {
			t.Errorf("cursorAfter(%d) = %q, instachat.EncodeCursor = %q", n, cursors[i], instachat.EncodeCursor(n))
		}
	}

	// A chat of 130 messages opens at its newest; scrolling up loads the
	// older ones until the first, each once, in order.
	c, _, err := r.client.CreateChat(ctx, token, "history", "")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 130 {
		if _, _, err := r.client.CreateMessage(ctx, token, c.Number, fmt.Sprintf("history %03d", i+1), ""); err != nil {
			t.Fatal(err)
		}
	}
	if !live {
		a.run(chromedp.Reload()) // without the application's feed, a new chat shows on a reload
	}
	a.wait(fmt.Sprintf(`!!document.querySelector('[data-testid=chat-item][data-number="%d"]')`, c.Number), 10*time.Second)
	a.click(fmt.Sprintf(`[data-testid=chat-item][data-number="%d"] button`, c.Number))
	a.wait(`document.getElementById('chat-title').textContent === 'history' &&
		document.querySelectorAll('[data-testid=message-item]').length > 0`, 10*time.Second)
	first := a.bodies()
	if len(first) >= 130 || first[len(first)-1] != "130:history 130" {
		t.Fatalf("the chat opened showing %d messages ending %q, want its newest page", len(first), first[len(first)-1])
	}
	a.scrollToStart(20, 10*time.Second)
	var want []string
	for i := range 130 {
		want = append(want, fmt.Sprintf("%d:history %03d", i+1, i+1))
	}
	if got := a.bodies(); !slices.Equal(got, want) {
		t.Errorf("after scrolling up: %d messages %v…, want 1..130 in order", len(got), got[:min(5, len(got))])
	}

	// A reload keeps the application and the open chat.
	a.run(chromedp.Reload())
	a.wait(fmt.Sprintf(`document.querySelector('[data-testid=app-token]').value === %q &&
		document.querySelectorAll('[data-testid=chat-item]').length === %d &&
		document.getElementById('chat-title').textContent === 'history'`, token, c.Number), 10*time.Second)

	// An error is shown in the API's words.
	a.typeInto("[data-testid=app-token]", "AAAAAAAAAAAAAAAAAAAAAA")
	a.click("#open-app button[type=submit]")
	a.wait(`!document.getElementById('notice').hidden &&
		document.getElementById('notice-text').textContent === 'application not found'`, 10*time.Second)
	// (Set rather than typed: typing 64 KiB takes minutes.)
	js[bool](a, fmt.Sprintf(`(document.querySelector('[data-testid=composer]').value = 'x'.repeat(%d), true)`,
		instachat.DefaultLimits.MaxBodyBytes+1))
	a.click("[data-testid=send]")
	a.wait(`document.querySelector('[data-testid=message-item][data-state=failed] .inline-error')
		?.textContent.includes('body')`, 15*time.Second)

	// The policy holds in the browser: no connection to another origin (a
	// closed loopback port; the browser refuses before connecting), no
	// inline script even when one is put in the page.
	violations := js[[]string](a, `new Promise(done => {
		const seen = [];
		document.addEventListener('securitypolicyviolation', e => {
			seen.push(e.effectiveDirective);
			if (seen.length === 2) done(seen.sort());
		});
		fetch('http://127.0.0.1:9/elsewhere').catch(() => {});
		const s = document.createElement('script');
		s.textContent = 'window.injected = true';
		document.body.append(s);
	})`)
	if !slices.Equal(violations, []string{"connect-src", "script-src-elem"}) || js[bool](a, `window.injected === true`) {
		t.Errorf("policy violations %v, injected script ran: %v", violations, js[bool](a, `window.injected === true`))
	}
	a.forget("policy:", 2) // those two were provoked

	// A chat that does not exist says so, and its feed stops.
	a.run(chromedp.Click(chromedp.CSS(`#notice-close`)))
	js[bool](a, `(location.hash = '#chat-99', true)`)
	a.wait(`document.getElementById('notice-text').textContent === 'chat not found' &&
		document.querySelector('[data-testid=connection-state]').dataset.state === 'stopped'`, 10*time.Second)
	a.click(fmt.Sprintf(`[data-testid=chat-item][data-number="%d"] button`, c.Number))
	a.wait(`document.getElementById('chat-title').textContent === 'history' &&
		document.querySelectorAll('[data-testid=message-item][data-number]').length > 0`, 10*time.Second)

	// Delete is offered when the server has the route, and works.
	canDelete := js[bool](a, `document.body.classList.contains('can-delete')`)
	if has := allowsDelete(t, r, token); has != canDelete {
		t.Errorf("delete offered: %v, server allows DELETE: %v", canDelete, has)
	}
	if canDelete {
		a.click(`[data-testid=message-item][data-number="130"] [data-action=delete]`)
		a.click(`[data-testid=message-item][data-number="130"] .danger`)
		a.wait(`!document.querySelector('[data-testid=message-item][data-number="130"]')`, 10*time.Second)
		if _, err := r.client.FindMessage(ctx, token, c.Number, 130); instachat.ErrorCode(err) != instachat.ENOTFOUND {
			t.Errorf("message 130 after delete in the page: %v, want not found", err)
		}
	}

	// The screenshots: the general chat with a search open.
	a.run(chromedp.Click(chromedp.CSS(`#notice-close`)))
	a.click(`[data-testid=chat-item][data-number="1"] button`)
	a.wait(`document.getElementById('chat-title').textContent === 'general'`, 10*time.Second)
	if !live {
		if _, _, err := r.client.CreateMessage(ctx, token, 1, firstBody, ""); err != nil {
			t.Fatal(err)
		}
	}
	// Every body is text: also one read from a page rather than a feed.
	if _, _, err := r.client.CreateMessage(ctx, token, 1, xssBody, ""); err != nil {
		t.Fatal(err)
	}
	a.run(chromedp.Reload())
	a.wait(fmt.Sprintf(`[...document.querySelectorAll('[data-testid=message-item] .body')]
			.some(e => e.textContent === %q)`, xssBody), 10*time.Second)
	if n := js[int](a, `document.querySelectorAll('[data-testid=message-list] img').length`); n != 0 {
		t.Errorf("the message list holds %d img elements", n)
	}
	// Every control has a name a screen reader can say.
	if unnamed := js[[]string](a, `[...document.querySelectorAll('input, textarea, button')]
		.filter(e => !(e.labels?.length || e.getAttribute('aria-label') || (e.tagName === 'BUTTON' &&
		e.textContent.trim()))).map(e => e.outerHTML)`); len(unnamed) > 0 {
		t.Errorf("controls without a label: %v", unnamed)
	}

	// The screenshots: a chat of a few messages, one edited, and a search.
	demo, _, err := r.client.CreateChat(ctx, token, "launch-day", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{
		"Morning all! The deploy window opens at 10:00.",
		"Supercalifragilistic morning ☀️ coffee is on.",
		"Deploying 2.4 now; watching the dashboards.",
		"Dashboards are green. Search finds partial words: try \"califrag\".",
		xssBody + " ← shown as text, never run",
		"Deploy done. Thanks, everyone!",
	} {
		if _, _, err := r.client.CreateMessage(ctx, token, demo.Number, body, ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.client.UpdateMessage(ctx, token, demo.Number, 3, "Deploying 2.4.1 now; watching the dashboards."); err != nil {
		t.Fatal(err)
	}
	a.run(chromedp.Reload())
	a.wait(fmt.Sprintf(`!!document.querySelector('[data-testid=chat-item][data-number="%d"]')`, demo.Number), 10*time.Second)
	a.click(fmt.Sprintf(`[data-testid=chat-item][data-number="%d"] button`, demo.Number))
	a.wait(`document.getElementById('chat-title').textContent === 'launch-day' &&
		document.querySelectorAll('[data-testid=message-item]').length === 6`, 10*time.Second)
	if live {
		a.wait(`document.querySelector('[data-testid=connection-state]').dataset.state === 'live'`, 10*time.Second)
	}
	a.typeInto("[data-testid=search]", "deploy")
	a.click("#search-form button[type=submit]")
	a.wait(`document.querySelectorAll('[data-testid=search-result]').length === 3`, 10*time.Second)
	a.screenshot("console-desktop.png", 1280, 800)
	a.run(chromedp.Click(chromedp.CSS(`#results-close`)))
	a.screenshot("console-narrow.png", 360, 740)
}

// allowsDelete reports whether the server deletes messages.
func allowsDelete(t *testing.T, r *running, token string) bool {
	res := rawRequest(t, "OPTIONS", fmt.Sprintf("%s/api/v1/applications/%s/chats/1/messages/1", r.URL(), token), nil)
	return strings.Contains(res.Header.Get("Allow"), "DELETE")
}

// TestConsoleRetriesALostSendWithItsKey loses the answer to a send after
// the server stored it, as a dropped connection would: the console sends
// again with the same Idempotency-Key, the server answers with the message
// the key created, and the chat holds it once.
func TestConsoleRetriesALostSendWithItsKey(t *testing.T) {
	b := browser.Start(t)
	r := start(t, t.TempDir())
	ctx := t.Context()
	app := r.appWithChat(t, "retries", "general")
	a := openConsole(t, b, "A", r.URL()+"/")
	// With the keyboard alone: Enter in the token field opens, Enter on a
	// chat opens it.
	a.typeInto("[data-testid=app-token]", app.Token)
	a.run(chromedp.KeyEvent("\r"))
	a.wait(`!!document.querySelector('[data-testid=chat-item][data-number="1"] button')`, 10*time.Second)
	a.run(chromedp.Focus(chromedp.CSS(`[data-testid=chat-item][data-number="1"] button`)), chromedp.KeyEvent("\r"))
	a.wait(`document.getElementById('chat-title').textContent === 'general'`, 10*time.Second)

	// Sends are held at their answer; the first answer is dropped.
	if _, err := chromedp.Call(a.ctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{
		{URLPattern: "*/chats/1/messages", RequestStage: fetch.RequestStageResponse},
	}}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var keys []string
	var statuses []int64
	go func() {
		for ev, err := range chromedp.Events(a.ctx, fetch.RequestPaused) {
			if err != nil {
				return
			}
			mu.Lock()
			key, _ := ev.Request.Headers["Idempotency-Key"].(string)
			keys = append(keys, key)
			statuses = append(statuses, ev.ResponseStatusCode)
			first := len(keys) == 1
			mu.Unlock()
			if first {
				chromedp.Call(a.ctx, fetch.FailRequest,
					fetch.FailRequestParams{RequestID: ev.RequestID, ErrorReason: network.ErrorReasonConnectionReset})
			} else {
				chromedp.Call(a.ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
			}
		}
	}()
	a.typeInto("[data-testid=composer]", "sent once, answered twice")
	a.click("[data-testid=send]")
	// Stored (the feed may tell before the retry's answer does) and no
	// longer pending: the retry was answered.
	a.wait(`[...document.querySelectorAll('[data-testid=message-item]')]
		.some(e => e.dataset.state === 'stored' &&
		e.querySelector('.body').textContent === 'sent once, answered twice') &&
		!document.querySelector('[data-testid=message-item][data-state=pending]')`, 15*time.Second)

	mu.Lock()
	defer mu.Unlock()
	if len(keys) != 2 || keys[0] == "" || keys[0] != keys[1] {
		t.Fatalf("the sends carried keys %q, want two sends with one key", keys)
	}
	if statuses[0] != http.StatusCreated || statuses[1] != http.StatusCreated {
		t.Errorf("the server answered %v, want 201 to the lost send and 201 (replayed) to its retry", statuses)
	}
	msgs, err := r.client.AllMessages(ctx, app.Token, 1)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("the chat holds %v (%v), want the message once", msgs, err)
	}
	if got := a.bodies(); !slices.Equal(got, []string{"1:sent once, answered twice"}) {
		t.Errorf("the page shows %v", got)
	}
	a.clean()
}

// TestConsoleScrollsBackThroughPagesCutShort scrolls back through a chat
// of large bodies, where a page of the list ends by bytes before its limit:
// the console must follow next_cursor through the range it loads, or it
// would skip the messages the short page left out.
func TestConsoleScrollsBackThroughPagesCutShort(t *testing.T) {
	b := browser.Start(t)
	r := start(t, t.TempDir())
	ctx := t.Context()
	app := r.appWithChat(t, "large bodies", "big")
	const n, size = 120, 60 << 10 // pages of about 16 under the 1 MiB bound
	var want []string
	for i := range n {
		body := fmt.Sprintf("big %03d %s", i+1, strings.Repeat("x", size-8))
		if _, _, err := r.client.CreateMessage(ctx, app.Token, 1, body, ""); err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprintf("%d:big %03d", i+1, i+1))
	}
	a := openConsole(t, b, "A", r.URL()+"/")
	a.typeInto("[data-testid=app-token]", app.Token)
	a.click("#open-app button[type=submit]")
	a.click(`[data-testid=chat-item][data-number="1"] button`)
	a.wait(`document.querySelectorAll('[data-testid=message-item]').length > 0`, 10*time.Second)
	a.scrollToStart(40, 20*time.Second)
	got := js[[]string](a, `[...document.querySelectorAll('[data-testid=message-item][data-number]')]
		.map(e => e.dataset.number + ':' + e.querySelector('.body').textContent.slice(0, 7))`)
	if !slices.Equal(got, want) {
		t.Errorf("after scrolling back: %d messages, want %d in order; first ones %v", len(got), n, got[:min(20, len(got))])
	}
	a.clean()
}
