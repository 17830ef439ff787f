package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/server"
	_ "modernc.org/sqlite" // to count the rows left, read-only, beside the binary
)

// TestCrashWhileReclaimingResumes deletes a chat of 200,000 messages, kills
// the binary (SIGKILL) while it erases them in the background, and checks
// that the next start finishes the erasure with nothing visible changed:
// the chat answers 404 throughout, the application's other chat and every
// count are exact, and numbering continues above the deleted chat.
func TestCrashWhileReclaimingResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("bulk-loads 200,000 messages and SIGKILLs the instachat binary while it reclaims them (about 30 s): not run with -short")
	}
	const big = 200_000
	dir := t.TempDir()
	// Loaded by instachat-bench populate, built without -race: through the
	// store's ApplyCreates, as a worker stores creates, in large batches.
	out, err := exec.Command("go", "run", "../instachat-bench", "populate", "-data-dir", dir,
		"-apps", "1", "-chats", "1", "-messages", strconv.Itoa(big), "-body-size", "40", "-batch", "20000").CombinedOutput()
	if err != nil {
		t.Fatalf("instachat-bench populate: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`first application: (\S+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("instachat-bench populate named no application:\n%s", out)
	}
	token := string(m[1])
	env := "INSTACHAT_ADMIN_TOKEN=" + topologyAdminToken // /metrics needs it

	ctx := context.Background()
	p := startChild(t, dir, env)
	kept, _, err := p.client.CreateChat(ctx, token, "kept", "")
	if err != nil || kept.Number != 2 {
		t.Fatalf("create the chat kept: %+v %v", kept, err)
	}
	for i := range 50 {
		if _, _, err := p.client.CreateMessage(ctx, token, 2, fmt.Sprintf("kept %d", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.client.DeleteChat(ctx, token, 1); err != nil {
		t.Fatalf("DELETE the chat of %d messages: %v", big, err)
	}
	// SIGKILL once some batches are erased, well before all are.
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := reclaimed(p.url)
		if err != nil {
			t.Fatal(err)
		}
		if n >= 5000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("30 s after the delete, %v rows reclaimed", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	p.kill(t)
	left := rowsLeft(t, dir, token)
	t.Logf("SIGKILL with %d of the chat's %d messages left to reclaim", left, big)
	if left == 0 || left >= big {
		t.Fatalf("the kill did not land mid-reclaim: %d rows left of %d", left, big)
	}

	p = startChild(t, dir, env)
	check := func(when string) {
		t.Helper()
		if _, err := p.client.FindChat(ctx, token, 1); instachat.ErrorCode(err) != instachat.ENOTFOUND {
			t.Errorf("%s: GET the deleted chat: %v, want 404", when, err)
		}
		if _, _, err := p.client.CreateMessage(ctx, token, 1, "too late", ""); instachat.ErrorCode(err) != instachat.ENOTFOUND {
			t.Errorf("%s: create in the deleted chat: %v, want 404", when, err)
		}
		app, err := p.client.FindApplication(ctx, token)
		if err != nil || app.ChatsCount != 1 {
			t.Errorf("%s: application %+v, %v; want chats_count 1", when, app, err)
		}
		c, err := p.client.FindChat(ctx, token, 2)
		if err != nil || c.MessagesCount != 50 {
			t.Errorf("%s: chat kept %+v, %v; want messages_count 50", when, c, err)
		}
		if msgs, err := p.client.AllMessages(ctx, token, 2); err != nil || len(msgs) != 50 {
			t.Errorf("%s: chat kept lists %d messages, %v; want 50", when, len(msgs), err)
		}
	}
	check("after the restart")
	// The reclaimer takes at most a fifth of the store's time (worker.
	// Reclaimer), so how long it needs follows the machine's speed: the
	// test asks that it resumes and keeps making progress to the end — no
	// 30 s without a row reclaimed, and done within 5 minutes.
	deadline = time.Now().Add(5 * time.Minute)
	left, progressed := rowsLeft(t, dir, token), time.Now()
	for left > 0 {
		switch {
		case time.Now().After(deadline):
			t.Fatalf("5 minutes after the restart, %d rows still to reclaim", left)
		case time.Since(progressed) > 30*time.Second:
			t.Fatalf("no row reclaimed for 30 s after the restart, %d still to reclaim", left)
		}
		time.Sleep(200 * time.Millisecond)
		if now := rowsLeft(t, dir, token); now < left {
			left, progressed = now, time.Now()
		}
	}
	check("once reclaimed")
	if c, _, err := p.client.CreateChat(ctx, token, "next", ""); err != nil || c.Number != 3 {
		t.Errorf("chat created after the reclaim: %+v %v; want number 3, the deleted 1 never reissued", c, err)
	}
}

var reclaimedLine = regexp.MustCompile(`(?m)^instachat_reclaimed_rows_total (\S+)$`)

// reclaimed reads instachat_reclaimed_rows_total of the process at url.
func reclaimed(url string) (float64, error) {
	req, err := http.NewRequest("GET", url+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+topologyAdminToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	text, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, err
	}
	m := reclaimedLine.FindSubmatch(text)
	if m == nil {
		return 0, fmt.Errorf("/metrics has no instachat_reclaimed_rows_total")
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

// rowsLeft counts the message rows of the application in the database of
// dir, read-only (the WAL lets it read beside a running binary).
func rowsLeft(t *testing.T, dir, token string) int64 {
	t.Helper()
	path, err := filepath.Abs(server.DatabasePath(dir))
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int64
	if err := db.QueryRow(`SELECT COUNT(*) FROM messages WHERE app_token = ? AND chat_number = 1`, token).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
