// Package inmem holds the embedded default's Sequencer and Queue: state kept
// in the process, which is why the Sequencer is rebuilt from the store at
// start and the Queue counts a create durable only once the store took it.
package inmem

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/instachat/instachat"
)

// Sequencer issues numbers from memory. It is on every creation's path, so
// nothing on it is global: applications sit in a sync.Map, which reads
// without locking; an application's mutex serialises only its own chat
// creations; and message numbers come from one atomic counter per chat.
type Sequencer struct {
	apps sync.Map // token → *app
}

var _ instachat.Sequencer = (*Sequencer)(nil)

type app struct {
	mu sync.Mutex // serialises the growth of chats
	// chats holds the message counter of chat n at n-1, so its length is
	// the last chat number issued. Growth stores a new slice header, so a
	// reader without the mutex sees the chats before or after, never half.
	chats atomic.Pointer[[]*atomic.Int64]
}

// NewSequencer returns a Sequencer that knows no application.
func NewSequencer() *Sequencer { return &Sequencer{} }

// LoadSequencer returns a Sequencer that continues above every number the
// store holds, so a restart never issues a stored number again. A chat
// watermark makes its chat, and every chat numbered below it, exist.
func LoadSequencer(ctx context.Context, store interface {
	Watermarks(ctx context.Context, fn func(instachat.Watermark) error) error
}) (*Sequencer, error) {
	s := NewSequencer()
	err := store.Watermarks(ctx, func(w instachat.Watermark) error {
		if w.Chat < 0 {
			return fmt.Errorf("inmem: watermark of chat %d", w.Chat)
		}
		a := s.add(w.Token)
		a.mu.Lock()
		defer a.mu.Unlock()
		if w.Chat == 0 {
			a.extend(w.Highest)
			return nil
		}
		counter := a.extend(w.Chat)[w.Chat-1]
		counter.Store(max(counter.Load(), w.Highest))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("inmem: load sequencer: %w", err)
	}
	return s, nil
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
	if !ok {
		return 0, instachat.Errorf(instachat.ENOTFOUND, "application not found")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	n := int64(len(*a.chats.Load())) + 1
	a.extend(n)
	return n, nil
}

// NextMessageNumber returns ENOTFOUND if the application or the chat is
// unknown.
func (s *Sequencer) NextMessageNumber(_ context.Context, token string, chat int64) (int64, error) {
	a, ok := s.app(token)
	if !ok {
		return 0, instachat.Errorf(instachat.ENOTFOUND, "application not found")
	}
	chats := *a.chats.Load()
	if chat < 1 || chat > int64(len(chats)) {
		return 0, instachat.Errorf(instachat.ENOTFOUND, "chat not found")
	}
	return chats[chat-1].Add(1), nil
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
