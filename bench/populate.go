package bench

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/server"
	"github.com/instachat/instachat/sqlite"
	"github.com/schollz/progressbar/v3"
)

// Populate is `instachat-bench populate`: it bulk-loads applications, chats and messages
// straight into the embedded store of -data-dir through ApplyCreates, the
// batched write path of the worker, and reports rows per second. Its
// applications are new, their chats numbered 1..n and each chat's messages
// 1..n with the counts to match, so a server started afterwards on the
// directory loads the watermarks and continues at n+1 (a server already
// running on it would not know the new applications until restarted).
// Messages are spread evenly over the chats, the first chats taking one
// more when they do not divide.
func Populate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := server.DefaultConfig()
	var apps, chats, messages, bodySize, batch int
	fs := flag.NewFlagSet("instachat-bench populate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "data directory of the embedded store")
	fs.IntVar(&apps, "apps", 1, "applications to create")
	fs.IntVar(&chats, "chats", 10, "chats per application")
	fs.IntVar(&messages, "messages", 1_000_000, "messages in all, spread evenly over every chat")
	fs.IntVar(&bodySize, "body-size", 100, "bytes in a message body")
	fs.IntVar(&batch, "batch", 5000, "creates per ApplyCreates transaction")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	case apps < 1 || chats < 1 || bodySize < 1 || batch < 1:
		return errors.New("-apps, -chats, -body-size and -batch must be at least 1")
	case messages < 0:
		return errors.New("-messages must not be negative")
	}
	store, err := server.OpenStore(cfg)
	if err != nil {
		return err
	}
	defer store.Close()

	allChats, rows := apps*chats, apps+apps*chats+messages
	l := &loader{store: store, creates: make([]instachat.Create, 0, batch), bar: newBar(stderr, "populate", "rows", int64(rows))}
	rng := rand.New(rand.NewPCG(1, 2))
	now := instachat.Timestamp(time.Now())
	start := time.Now()
	var first string
	for a := range apps {
		token := instachat.NewToken()
		first = cmp.Or(first, token)
		app := &instachat.Application{Token: token, Name: "populated " + strconv.Itoa(a+1), CreatedAt: now, UpdatedAt: now}
		if err := store.CreateApplication(ctx, app); err != nil {
			return err
		}
		l.bar.Add(1)
		for c := range chats {
			chat := int64(c + 1)
			if err := l.add(ctx, instachat.Create{Chat: &instachat.Chat{Token: token, Number: chat, CreatedAt: now, UpdatedAt: now}}); err != nil {
				return err
			}
			n := share(int64(messages), int64(allChats), int64(a*chats+c))
			if err := l.addMessages(ctx, token, chat, 0, n, rng, bodySize, now); err != nil {
				return err
			}
		}
	}
	if err := l.flush(ctx); err != nil {
		return err
	}
	// The index follows the rows on its own connection; a server started
	// on the data dir would finish it, but its searches would scan what is
	// left meanwhile.
	if err := store.SyncIndex(ctx); err != nil {
		return err
	}
	l.bar.Finish()
	elapsed := time.Since(start)
	fmt.Fprintf(stdout, "populated %d applications, %d chats and %d messages into %s in %.1fs: %.0f rows/s\n",
		apps, allChats, messages, server.DatabasePath(cfg.DataDir), elapsed.Seconds(), float64(rows)/elapsed.Seconds())
	fmt.Fprintf(stdout, "first application: %s (for instachat-bench load -token)\n", first)
	return nil
}

// loader gathers creates into batches of cap(creates).
type loader struct {
	store   *sqlite.DB
	creates []instachat.Create
	bar     *progressbar.ProgressBar
}

func (l *loader) add(ctx context.Context, c instachat.Create) error {
	l.creates = append(l.creates, c)
	if len(l.creates) < cap(l.creates) {
		return nil
	}
	return l.flush(ctx)
}

func (l *loader) flush(ctx context.Context) error {
	if err := l.store.ApplyCreates(ctx, l.creates); err != nil {
		return err
	}
	l.bar.Add(len(l.creates))
	l.creates = l.creates[:0]
	return nil
}

// share is part i of total split into parts as evenly as whole numbers
// allow, the first total%parts parts one larger.
func share(total, parts, i int64) int64 {
	n := total / parts
	if i < total%parts {
		n++
	}
	return n
}

// addMessages adds messages after..after+n of the chat, with random bodies.
func (l *loader) addMessages(ctx context.Context, token string, chat, after, n int64, rng *rand.Rand, bodySize int, now time.Time) error {
	for number := after + 1; number <= after+n; number++ {
		m := &instachat.Message{Token: token, Chat: chat, Number: number, Body: text(rng, "", bodySize), CreatedAt: now, UpdatedAt: now}
		if err := l.add(ctx, instachat.Create{Message: m}); err != nil {
			return err
		}
	}
	return nil
}
