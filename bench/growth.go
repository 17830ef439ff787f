package bench

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/instachat/instachat"
	instachathttp "github.com/instachat/instachat/http"
	"github.com/instachat/instachat/server"
	"github.com/instachat/instachat/sqlite"
)

// GrowthReport is what `instachat-bench growth` prints; -json prints it as
// is.
type GrowthReport struct {
	DataDir     string       `json:"data_dir"`
	Messages    int64        `json:"messages"` // stored at the last step
	Chats       int          `json:"chats"`
	BodySize    int          `json:"body_size"`
	Concurrency int          `json:"concurrency"`
	LoadSeconds float64      `json:"load_s"`   // of each step
	Warmup      float64      `json:"warmup_s"` // unmeasured load before each
	Steps       []GrowthStep `json:"steps"`
}

// GrowthStep is the create-messages load against the embedded server at
// one stored count.
type GrowthStep struct {
	Stored          int64   `json:"stored"`           // messages in the store as the measured load began, after the warm-up
	PopulateSeconds float64 `json:"populate_seconds"` // bulk-loading up to it from the step before
	Result          Result  `json:"result"`
	Ratio           float64 `json:"ratio"` // Result.Throughput / the empty store's
}

// growthTarget is the ratio to the empty store the issue asks for.
const growthTarget = 0.9

// growthOptions are the flags of Growth.
type growthOptions struct {
	dataDir                             string
	messages                            int64
	steps, chats, concurrency, bodySize int
	batch                               int
	duration, warmup                    time.Duration
	out                                 string
	json                                bool
}

// Growth is `instachat-bench growth`: into one embedded data directory it
// bulk-loads messages in -steps equal steps up to -messages (through
// ApplyCreates, as instachat-bench populate does), and before the first step and
// after each one starts the embedded server in this process, drives the
// create-messages load at it for -d, and stops it. It prints throughput and
// p99 against stored messages, each step's throughput as a ratio of the
// empty store's, and draws growth.svg. Everything is stored in one
// application whose -chats chats the load also writes to, so the chats
// grow with the store; what the loads create counts as stored too.
func Growth(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o growthOptions
	fs := flag.NewFlagSet("instachat-bench growth", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.dataDir, "data-dir", "",
		"an empty or new data directory for the embedded store, kept afterwards (default: a temporary one, removed afterwards)")
	fs.Int64Var(&o.messages, "messages", 10_000_000, "stored messages at the last step")
	fs.IntVar(&o.steps, "steps", 10, "equal steps of bulk loading up to -messages; the empty store is measured first")
	fs.IntVar(&o.chats, "chats", 16, "chats of the one application that holds the messages and takes the load")
	fs.IntVar(&o.concurrency, "c", 64, "concurrent connections of each load")
	fs.DurationVar(&o.duration, "d", 10*time.Second, "how long each load runs")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second,
		"how long the same load runs, unmeasured, before each measured one: the server has just started on a freshly loaded store")
	fs.IntVar(&o.bodySize, "body-size", 100, "bytes in a message body, stored and created")
	fs.IntVar(&o.batch, "batch", 5000, "creates per ApplyCreates transaction while bulk loading")
	fs.StringVar(&o.out, "out", ".", "directory to draw growth.svg into (empty: no chart)")
	fs.BoolVar(&o.json, "json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	case o.steps < 1 || o.chats < 1 || o.concurrency < 1 || o.bodySize < 1 || o.batch < 1:
		return errors.New("-steps, -chats, -c, -body-size and -batch must be at least 1")
	case o.messages < 0:
		return errors.New("-messages must not be negative")
	case o.duration <= 0 || o.warmup < 0:
		return errors.New("-d must be positive and -warmup not negative")
	}
	dir := o.dataDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "instachat-growth-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	} else if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("-data-dir %s is not empty: every message stored there would count", dir)
	}
	rep := GrowthReport{DataDir: dir, Messages: o.messages, Chats: o.chats, BodySize: o.bodySize,
		Concurrency: o.concurrency, LoadSeconds: o.duration.Seconds(), Warmup: o.warmup.Seconds()}
	runErr := rep.run(ctx, o, stderr)
	if len(rep.Steps) == 0 {
		return runErr
	}
	// Steps measured before an interruption are still worth printing.
	var chart string
	if o.out != "" {
		var err error
		if chart, err = writeGrowthChart(o.out, rep); err != nil {
			return errors.Join(runErr, err)
		}
	}
	var err error
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	} else {
		err = rep.print(stdout, chart)
	}
	return errors.Join(runErr, err)
}

// run creates the application and its chats, then measures the empty store
// and each step, appending to r.Steps as it goes.
func (r *GrowthReport) run(ctx context.Context, o growthOptions, stderr io.Writer) error {
	cfg := server.DefaultConfig()
	cfg.DataDir, cfg.Addr = r.DataDir, "127.0.0.1:0"
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	token := instachat.NewToken()
	counts := make([]int64, o.chats) // messages in each chat
	err := withStore(cfg, func(store *sqlite.DB) error {
		now := instachat.Timestamp(time.Now())
		if err := store.CreateApplication(ctx, &instachat.Application{Token: token, Name: "growth", CreatedAt: now, UpdatedAt: now}); err != nil {
			return err
		}
		creates := make([]instachat.Create, o.chats)
		for i := range creates {
			creates[i] = instachat.Create{Chat: &instachat.Chat{Token: token, Number: int64(i + 1), CreatedAt: now, UpdatedAt: now}}
		}
		return store.ApplyCreates(ctx, creates)
	})
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	w := &workload{token: token, chats: o.chats, bodies: messageBodies(o.bodySize)}
	var empty float64
	for step := 0; step <= o.steps; step++ {
		target := o.messages * int64(step) / int64(o.steps)
		populateStart := time.Now()
		if err := populateChats(ctx, cfg, token, counts, target, o, rng, stderr); err != nil {
			return fmt.Errorf("populating up to %d messages: %w", target, err)
		}
		s := GrowthStep{PopulateSeconds: time.Since(populateStart).Seconds()}
		s.Stored, s.Result, err = loadServer(ctx, cfg, logger, w, o, "load at "+strconv.FormatInt(sum(counts), 10), stderr)
		if err != nil {
			return fmt.Errorf("load at %d stored messages: %w", sum(counts), err)
		}
		if step == 0 {
			empty = s.Result.Throughput
		}
		if empty > 0 {
			s.Ratio = s.Result.Throughput / empty
		}
		r.Steps = append(r.Steps, s)
		// The load created messages too: count them from the store.
		err = withStore(cfg, func(store *sqlite.DB) error {
			for i := range counts {
				c, err := store.FindChat(ctx, token, int64(i+1))
				if err != nil {
					return err
				}
				counts[i] = c.MessagesCount
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// populateChats bulk-loads messages into the chats, each numbered on from its
// count, until they hold target in all, spread evenly (the first chats take
// one more when they do not divide).
func populateChats(ctx context.Context, cfg server.Config, token string, counts []int64, target int64,
	o growthOptions, rng *rand.Rand, stderr io.Writer) error {
	need := target - sum(counts)
	if need <= 0 {
		return nil
	}
	return withStore(cfg, func(store *sqlite.DB) error {
		l := &loader{store: store, creates: make([]instachat.Create, 0, o.batch), bar: newBar(stderr, "populate", "rows", need)}
		now := instachat.Timestamp(time.Now())
		chats := int64(len(counts))
		for i := range counts {
			n := share(need, chats, int64(i))
			if err := l.addMessages(ctx, token, int64(i+1), counts[i], n, rng, o.bodySize, now); err != nil {
				return err
			}
			counts[i] += n
		}
		if err := l.flush(ctx); err != nil {
			return err
		}
		// Each load starts with the index caught up, as a server that
		// has run a while would be (see populate).
		if err := store.SyncIndex(ctx); err != nil {
			return err
		}
		l.bar.Finish()
		return nil
	})
}

// loadServer starts the embedded server on cfg, drives the workload's
// creates at it for the warm-up and then for the measured load, and stops
// it. It returns the messages stored as the measured load began (in the
// embedded topology a create is stored when answered).
func loadServer(ctx context.Context, cfg server.Config, logger *slog.Logger, w *workload, o growthOptions,
	label string, stderr io.Writer) (stored int64, res Result, err error) {
	s := server.New(cfg, logger)
	if err := s.Open(ctx); err != nil {
		return 0, res, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		err = errors.Join(err, s.Close(cctx))
	}()
	ops := w.creates()
	if o.warmup > 0 {
		warm := options{concurrency: o.concurrency, duration: o.warmup}
		if _, err := drive(ctx, s.URL(), ops, o.concurrency, warm, "warm-up", stderr); err != nil {
			return 0, res, err
		}
	}
	client := instachathttp.NewClient(s.URL(), &http.Client{Timeout: 30 * time.Second})
	for chat := range w.chats {
		c, err := client.FindChat(ctx, w.token, int64(chat+1))
		if err != nil {
			return 0, res, err
		}
		stored += c.MessagesCount
	}
	load := options{concurrency: o.concurrency, duration: o.duration}
	res, err = drive(ctx, s.URL(), ops, o.concurrency, load, label, stderr)
	return stored, res, err
}

// withStore opens the embedded store of cfg for fn, with no server on it.
func withStore(cfg server.Config, fn func(*sqlite.DB) error) error {
	store, err := server.OpenStore(cfg)
	if err != nil {
		return err
	}
	return errors.Join(fn(store), store.Close())
}

func sum(counts []int64) int64 {
	var n int64
	for _, c := range counts {
		n += c
	}
	return n
}

func (r GrowthReport) print(w io.Writer, chart string) error {
	fmt.Fprintf(w, "instachat-bench growth: create-messages at %d connections for %gs per load after %gs "+
		"unmeasured, %d chats, %d-byte bodies, up to %d stored messages in %s\n\n",
		r.Concurrency, r.LoadSeconds, r.Warmup, r.Chats, r.BodySize, r.Messages, r.DataDir)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "stored\tpopulate s\trequests\treq/s\tp50 ms\tp90 ms\tp99 ms\tp99.9 ms\tmax ms\terrors\tratio to empty\t")
	for _, s := range r.Steps {
		fmt.Fprintf(tw, "%d\t%.1f\t%s%.2f\t\n", s.Stored, s.PopulateSeconds, s.Result.columns(), s.Ratio)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if last := r.Steps[len(r.Steps)-1]; len(r.Steps) > 1 {
		verdict := "met"
		if last.Ratio < growthTarget {
			verdict = "not met"
		}
		fmt.Fprintf(w, "at %d stored messages: %.2f of the empty store's create throughput (target ≥ %.2f: %s)\n",
			last.Stored, last.Ratio, growthTarget, verdict)
	}
	if chart != "" {
		fmt.Fprintf(w, "chart: %s\n", chart)
	}
	return nil
}
