package inmem

import (
	"cmp"
	"context"
	"sync"
	"time"

	"github.com/instachat/instachat"
)

// QueueOptions tune a Queue; a zero field takes its default.
type QueueOptions struct {
	MaxBatch int // creates handed to one handle call; default 1000
	Backlog  int // creates waiting for a consumer before Publish blocks; default 10000
}

// Queue is an in-process group commit: publishers wait while a consumer
// hands everything pending to the handler in one batch, so one store commit
// answers many requests. Nothing outlives the process, so a create counts as
// published only once the handler — the store commit — took it.
//
// Several Consume calls may run at once; creates of one application then
// keep their order per consumer only. The embedded server runs one.
type Queue struct {
	maxBatch  int
	pending   chan *item
	closed    chan struct{}
	closeOnce sync.Once

	mu        sync.Mutex
	consumers int
	inflight  map[*batch]struct{} // batches in a handle call, for DeadLetter
}

var _ instachat.Queue = (*Queue)(nil)

// item is one create on its way, with the Publish call waiting for it.
type item struct {
	c    instachat.Create
	pub  *publication
	dead error // the DeadLetter reason; guarded by Queue.mu while in flight
}

// publication is one Publish call, answered when its last create is.
type publication struct {
	mu   sync.Mutex
	left int
	err  error
	done chan error // buffered: a publisher that gave up never blocks a consumer
	one  [1]item    // the item of a Publish call of one create, the common one
}

type batch struct {
	items   []*item
	creates []instachat.Create
}

var (
	errTimeout = instachat.Errorf(instachat.EUNAVAILABLE, "queue did not accept the create in time")
	errClosed  = instachat.Errorf(instachat.EUNAVAILABLE, "queue is closed")
	errStopped = instachat.Errorf(instachat.EUNAVAILABLE, "queue consumer stopped")
)

// A failing handler is retried with backoff from minBackoff doubling to
// maxBackoff: a store that is down gets room to come back, and one that
// merely blinked costs the batch only milliseconds.
const (
	minBackoff = 5 * time.Millisecond
	maxBackoff = time.Second
)

// NewQueue returns an open Queue with no consumer.
func NewQueue(opts QueueOptions) *Queue {
	return &Queue{
		maxBatch: cmp.Or(opts.MaxBatch, 1000),
		pending:  make(chan *item, cmp.Or(opts.Backlog, 10000)),
		closed:   make(chan struct{}),
		inflight: map[*batch]struct{}{},
	}
}

// Enqueue puts the creates in the backlog, in order, and returns a wait
// that answers nil once a handler took every create, or the reason given to
// DeadLetter for one of them. Only a full backlog makes Enqueue block. When
// ctx ends first, or the queue is closed meanwhile, it or the wait returns
// EUNAVAILABLE, and the creates already accepted may still be applied
// later: the client cannot tell, as with any request whose answer is lost.
func (q *Queue) Enqueue(ctx context.Context, creates ...instachat.Create) (func(context.Context) error, error) {
	select {
	case <-q.closed:
		return nil, errClosed
	default:
	}
	if len(creates) == 0 {
		return func(context.Context) error { return nil }, nil
	}
	p := &publication{left: len(creates), done: make(chan error, 1)}
	items := p.one[:]
	if len(creates) > 1 {
		items = make([]item, len(creates))
	}
	for i, c := range creates {
		items[i] = item{c: c, pub: p}
		select {
		case q.pending <- &items[i]:
		case <-q.closed:
			return nil, errClosed
		case <-ctx.Done():
			return nil, errTimeout
		}
	}
	return func(ctx context.Context) error {
		select {
		case err := <-p.done:
			return err
		case <-ctx.Done():
			return errTimeout
		}
	}, nil
}

// Consume hands batches to handle until ctx ends, then returns nil. A batch
// that fails is handed again, unchanged, until handle returns nil. When ctx
// ends, the publishers of the batch being retried get EUNAVAILABLE, and so
// do those of every pending create if no other consumer is left to take it.
func (q *Queue) Consume(ctx context.Context, handle func(ctx context.Context, batch []instachat.Create) error) error {
	q.mu.Lock()
	q.consumers++
	q.mu.Unlock()
	defer q.stop()
	for {
		b := q.take(ctx)
		if b == nil {
			return nil
		}
		q.track(b, true)
		var err error
		if !retry(ctx, func() bool { return handle(ctx, b.creates) == nil }) {
			err = errStopped
		}
		q.track(b, false)
		for _, it := range b.items {
			it.pub.answer(cmp.Or(it.dead, err))
		}
	}
}

// DeadLetter makes reason the answer to the Publish call of c, matched by
// its pointer among the batches being handled, whatever then becomes of the
// batch: the reason stays with c through retries. A create in no handle
// call is left alone: its publisher has, or will get, the answer of the
// handle call that takes it.
func (q *Queue) DeadLetter(_ context.Context, c instachat.Create, reason error) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	for b := range q.inflight {
		for _, it := range b.items {
			if it.c == c {
				it.dead = reason
				return nil
			}
		}
	}
	return nil
}

// Close refuses further Publish calls; running consumers still handle what
// is pending. It always returns nil, to serve as an io.Closer.
func (q *Queue) Close() error {
	q.closeOnce.Do(func() { close(q.closed) })
	return nil
}

// take waits for a pending create, then gathers, without waiting, what else
// is pending up to maxBatch: under load the batch is whatever accumulated
// during the previous handle call. It returns nil when ctx ends, checked
// first so that a stopping consumer takes no batch it would only fail.
func (q *Queue) take(ctx context.Context) *batch {
	if ctx.Err() != nil {
		return nil
	}
	b := &batch{}
	select {
	case it := <-q.pending:
		b.items = append(b.items, it)
	case <-ctx.Done():
		return nil
	}
gather:
	for len(b.items) < q.maxBatch {
		select {
		case it := <-q.pending:
			b.items = append(b.items, it)
		default:
			break gather
		}
	}
	b.creates = make([]instachat.Create, len(b.items))
	for i, it := range b.items {
		b.creates[i] = it.c
	}
	return b
}

func (q *Queue) track(b *batch, on bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if on {
		q.inflight[b] = struct{}{}
	} else {
		delete(q.inflight, b)
	}
}

// stop ends a consumer. The last one answers every pending create, whose
// publishers would otherwise wait for a consumer that may never come.
func (q *Queue) stop() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.consumers--; q.consumers > 0 {
		return
	}
	for {
		select {
		case it := <-q.pending:
			it.pub.answer(errStopped)
		default:
			return
		}
	}
}

// retry calls try until it succeeds, backing off between calls, and reports
// false if ctx ended first.
func retry(ctx context.Context, try func() bool) bool {
	for wait := minBackoff; !try(); wait = min(2*wait, maxBackoff) {
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// answer settles one create of the publication; the first error wins.
func (p *publication) answer(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.err = cmp.Or(p.err, err)
	if p.left--; p.left == 0 {
		p.done <- p.err
	}
}
