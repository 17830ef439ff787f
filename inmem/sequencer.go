// Package inmem holds the embedded default's Sequencer and Queue: state kept
// in the process, which is why the Sequencer is rebuilt from the store at
// start and the Queue counts a create durable only once the store took it.
package inmem

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/instachat/instachat"
)

// Sequencer issues numbers from memory. It is on every creation's path, so
// nothing on it is global: applications sit in a sync.Map, which reads
// without locking; an application's mutex serialises only its own chat
// creations; and message numbers come from one atomic counter per chat.
type Sequencer struct {
	// ReceiptTTL is how long a receipt answers retries; zero means
	// instachat.DefaultReceiptTTL. Now is the clock receipts expire by;
	// nil means time.Now.
	ReceiptTTL time.Duration
	Now        func() time.Time

	apps sync.Map // token → *app

	receiptsMu sync.Mutex
	receipts   map[receiptKey]kept
	// expiries lists the receipts in the order they expire, from head on,
	// so expiring them costs O(1) per receipt instead of a sweep of all.
	expiries []expiry
	head     int
}

var _ instachat.Sequencer = (*Sequencer)(nil)

type app struct {
	deleted atomic.Bool
	mu      sync.Mutex // serialises the growth of chats
	// chats holds the message counter of chat n at n-1, so its length is
	// the last chat number issued. Growth stores a new slice header, so a
	// reader without the mutex sees the chats before or after, never half.
	chats atomic.Pointer[[]*atomic.Int64]
}

// NewSequencer returns a Sequencer that knows no application.
func NewSequencer() *Sequencer { return &Sequencer{} }

// LoadSequencer returns a Sequencer that continues above every number the
// store holds, so a restart never issues a stored number again. A chat
// watermark makes its chat, and every chat numbered below it, exist. The
// receipts kept durable by receipts (nil when none are) are loaded too, so a
// retry after a restart is still answered from its receipt; receipts older
// than ttl (0: the default) are not loaded.
func LoadSequencer(ctx context.Context, store WatermarkStore, receipts instachat.ReceiptStore, ttl time.Duration) (*Sequencer, error) {
	s := NewSequencer()
	s.ReceiptTTL = ttl
	if receipts != nil {
		err := receipts.Receipts(ctx, func(token, key string, r instachat.Receipt) error {
			s.addReceipt(token, key, r)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("inmem: load receipts: %w", err)
		}
		// The store gives them in any order; expire needs them by expiry.
		slices.SortFunc(s.expiries, func(a, b expiry) int { return a.expires.Compare(b.expires) })
	}
	err := store.Watermarks(ctx, func(w instachat.Watermark) error {
		if w.Chat < 0 {
			return fmt.Errorf("inmem: watermark of chat %d", w.Chat)
		}
		a := s.add(w.Token)
		a.mu.Lock()
		defer a.mu.Unlock()
		if w.ChatNumbers() {
			a.extend(w.Highest)
			if w.Deleted {
				a.deleted.Store(true)
			}
			return nil
		}
		counter := a.extend(w.Chat)[w.Chat-1]
		if w.Deleted {
			counter.Store(deletedChat)
			return nil
		}
		counter.Store(max(counter.Load(), w.Highest))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("inmem: load sequencer: %w", err)
	}
	return s, nil
}

// WatermarkStore is the part of instachat.Store that LoadSequencer reads.
type WatermarkStore interface {
	Watermarks(ctx context.Context, fn func(instachat.Watermark) error) error
}

// AddApplication keeps the numbering of an application it already knows,
// as the store would refuse to give a known token a second life.
func (s *Sequencer) AddApplication(_ context.Context, token string) error {
	s.add(token)
	return nil
}

// NextChatNumber returns ENOTFOUND if the application is unknown.
func (s *Sequencer) NextChatNumber(_ context.Context, token string) (int64, error) {
	a, ok := s.app(token)
	if !ok || a.deleted.Load() {
		return 0, instachat.ErrApplicationNotFound
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	n := int64(len(*a.chats.Load())) + 1
	a.extend(n)
	return n, nil
}

// NextMessageNumber returns ENOTFOUND if the application or the chat is
// unknown.
func (s *Sequencer) NextMessageNumber(ctx context.Context, token string, chat int64) (int64, error) {
	return s.NextMessageNumbers(ctx, token, chat, 1)
}

// NextMessageNumbers implements instachat.Sequencer.
func (s *Sequencer) NextMessageNumbers(_ context.Context, token string, chat int64, n int) (int64, error) {
	if n < 1 {
		return 0, fmt.Errorf("inmem: a block of %d numbers", n)
	}
	a, ok := s.app(token)
	if !ok || a.deleted.Load() {
		return 0, instachat.ErrApplicationNotFound
	}
	chats := *a.chats.Load()
	if chat < 1 || chat > int64(len(chats)) {
		return 0, instachat.ErrChatNotFound
	}
	last := chats[chat-1].Add(int64(n))
	if last < 1 {
		return 0, instachat.ErrChatNotFound
	}
	return last - int64(n) + 1, nil
}

// deletedChat is the counter of a deleted chat: so far below zero that
// adding to it never issues a number, and so checked with the Add that
// would issue one, without a lock.
const deletedChat = math.MinInt64 / 2

// Delete implements instachat.Sequencer. A chat's counter drops to
// deletedChat, so a NextMessageNumber racing with it either issued its
// number before (the store drops that create) or finds the chat gone.
func (s *Sequencer) Delete(_ context.Context, scope instachat.Scope) error {
	a, ok := s.app(scope.Token)
	if !ok {
		return nil
	}
	if scope.ChatNumbers() {
		a.deleted.Store(true)
		return nil
	}
	chat := scope.Chat
	chats := *a.chats.Load()
	if chat >= 1 && chat <= int64(len(chats)) {
		chats[chat-1].Store(deletedChat)
	}
	return nil
}

func (s *Sequencer) app(token string) (*app, bool) {
	a, ok := s.apps.Load(token)
	if !ok {
		return nil, false
	}
	return a.(*app), true
}

// add returns the application, known or new. It looks before it stores
// because loading calls it once per watermark, and LoadOrStore alone would
// allocate an app each time.
func (s *Sequencer) add(token string) *app {
	if a, ok := s.app(token); ok {
		return a
	}
	a := &app{}
	a.chats.Store(&[]*atomic.Int64{})
	v, _ := s.apps.LoadOrStore(token, a)
	return v.(*app)
}

// extend, called with mu held, makes chats 1..n exist and returns them all.
// Appending leaves the elements readers hold untouched, and a counter is
// its own allocation, so a copy on growth never moves a live counter.
func (a *app) extend(n int64) []*atomic.Int64 {
	chats := *a.chats.Load()
	if int64(len(chats)) >= n {
		return chats
	}
	for int64(len(chats)) < n {
		chats = append(chats, new(atomic.Int64))
	}
	a.chats.Store(&chats)
	return chats
}

// NextNumberOnce implements instachat.Sequencer. Receipts sit in one map
// under one mutex, held while the number is issued so that racing retries
// issue one number; only keyed creates take it. Each call first drops the
// receipts that have expired, oldest first, so the map holds about one
// retention's worth of keyed creates.
func (s *Sequencer) NextNumberOnce(ctx context.Context, scope instachat.Scope, key string,
	want instachat.Receipt) (instachat.Receipt, bool, error) {
	s.receiptsMu.Lock()
	defer s.receiptsMu.Unlock()
	now := s.now()
	s.expire(now)
	k := receiptKey{scope.Token, key}
	if r, ok := s.receipts[k]; ok && now.Before(r.expires) {
		return r.Receipt, true, nil
	}
	var err error
	if scope.ChatNumbers() {
		want.Number, err = s.NextChatNumber(ctx, scope.Token)
	} else {
		want.Number, err = s.NextMessageNumber(ctx, scope.Token, scope.Chat)
	}
	if err != nil {
		return instachat.Receipt{}, false, err
	}
	s.keep(k, kept{want, now.Add(s.receiptTTL())})
	return want, false, nil
}

// expiry is when the receipt of key stops answering.
type expiry struct {
	key     receiptKey
	expires time.Time
}

// keep stores a receipt, with receiptsMu held.
func (s *Sequencer) keep(k receiptKey, r kept) {
	if s.receipts == nil {
		s.receipts = map[receiptKey]kept{}
	}
	s.receipts[k] = r
	s.expiries = append(s.expiries, expiry{k, r.expires})
}

// expire drops the receipts expired at now, with receiptsMu held. A key
// kept again since its entry was queued has a later expiry and stays.
func (s *Sequencer) expire(now time.Time) {
	for s.head < len(s.expiries) && !now.Before(s.expiries[s.head].expires) {
		e := s.expiries[s.head]
		if r, ok := s.receipts[e.key]; ok && r.expires.Equal(e.expires) {
			delete(s.receipts, e.key)
		}
		s.expiries[s.head] = expiry{}
		s.head++
	}
	if s.head > 1024 && s.head > len(s.expiries)/2 { // reclaim the drained front
		s.expiries = append([]expiry(nil), s.expiries[s.head:]...)
		s.head = 0
	}
}

type receiptKey struct{ token, key string }

// kept is a receipt and when it stops answering.
type kept struct {
	instachat.Receipt
	expires time.Time
}

func (s *Sequencer) receiptTTL() time.Duration { return instachat.ReceiptRetention(s.ReceiptTTL) }

func (s *Sequencer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// addReceipt keeps a receipt loaded from the store until its create's time
// plus the retention, unless that has passed.
func (s *Sequencer) addReceipt(token, key string, r instachat.Receipt) {
	expires := r.CreatedAt.Add(s.receiptTTL())
	if !s.now().Before(expires) {
		return
	}
	s.receiptsMu.Lock()
	defer s.receiptsMu.Unlock()
	s.keep(receiptKey{token, key}, kept{r, expires})
}
