package http

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/instachat/instachat"
)

// Minimal in-memory doubles of the backends, enough to drive the handlers.
// The real backends are held to the contract by the conformance suites and
// the end-to-end tests; these only have to be honest about what they do.

type chatKey struct {
	token string
	chat  int64
}

// memStore embeds the interface so that a method the API never calls
// panics instead of needing a stub.
type memStore struct {
	instachat.Store
	mu    sync.Mutex
	apps  []*instachat.Application         // creation order
	chats map[string][]*instachat.Chat     // number order
	msgs  map[chatKey][]*instachat.Message // number order
}

func newMemStore() *memStore {
	return &memStore{chats: map[string][]*instachat.Chat{}, msgs: map[chatKey][]*instachat.Message{}}
}

func clone[T any](v *T) *T { c := *v; return &c }

func notFound(what string) error { return instachat.Errorf(instachat.ENOTFOUND, "%s not found", what) }

func (s *memStore) app(token string) *instachat.Application {
	i := slices.IndexFunc(s.apps, func(a *instachat.Application) bool { return a.Token == token })
	if i < 0 {
		return nil
	}
	return s.apps[i]
}

func (s *memStore) chat(token string, n int64) *instachat.Chat {
	for _, c := range s.chats[token] {
		if c.Number == n {
			return c
		}
	}
	return nil
}

func (s *memStore) message(token string, chat, n int64) *instachat.Message {
	for _, m := range s.msgs[chatKey{token, chat}] {
		if m.Number == n {
			return m
		}
	}
	return nil
}

// firstClones returns clones of the first limit items that keep accepts.
func firstClones[T any](items []*T, limit int, keep func(*T) bool) []*T {
	var out []*T
	for _, v := range items {
		if keep(v) && len(out) < limit {
			out = append(out, clone(v))
		}
	}
	return out
}

func (s *memStore) CreateApplication(_ context.Context, app *instachat.Application) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.app(app.Token) != nil {
		return instachat.Errorf(instachat.ECONFLICT, "application exists")
	}
	s.apps = append(s.apps, clone(app))
	return nil
}

func (s *memStore) FindApplication(_ context.Context, token string) (*instachat.Application, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.app(token); a != nil {
		return clone(a), nil
	}
	return nil, notFound("application")
}

func (s *memStore) ListApplications(_ context.Context, afterToken string, limit int) ([]*instachat.Application, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	start := 0
	if afterToken != "" {
		start = slices.IndexFunc(s.apps, func(a *instachat.Application) bool { return a.Token == afterToken }) + 1
	}
	return firstClones(s.apps[start:], limit, func(*instachat.Application) bool { return true }), nil
}

func (s *memStore) UpdateApplication(_ context.Context, token, name string, at time.Time) (*instachat.Application, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.app(token)
	if a == nil {
		return nil, notFound("application")
	}
	a.Name, a.UpdatedAt = name, at
	return clone(a), nil
}

func (s *memStore) FindChat(_ context.Context, token string, n int64) (*instachat.Chat, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.chat(token, n); c != nil {
		return clone(c), nil
	}
	return nil, notFound("chat")
}

func (s *memStore) ListChats(_ context.Context, token string, from int64, limit int) ([]*instachat.Chat, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.app(token) == nil {
		return nil, notFound("application")
	}
	return firstClones(s.chats[token], limit, func(c *instachat.Chat) bool { return c.Number > from }), nil
}

func (s *memStore) UpdateChat(_ context.Context, token string, n int64, name string, at time.Time) (*instachat.Chat, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.chat(token, n)
	if c == nil {
		return nil, notFound("chat")
	}
	c.Name, c.UpdatedAt = name, at
	return clone(c), nil
}

func (s *memStore) FindMessage(_ context.Context, token string, chat, n int64) (*instachat.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.message(token, chat, n); m != nil {
		return clone(m), nil
	}
	return nil, notFound("message")
}

func (s *memStore) FindMessages(_ context.Context, token string, chat int64, numbers []int64) ([]*instachat.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*instachat.Message
	for _, n := range numbers {
		if m := s.message(token, chat, n); m != nil {
			out = append(out, clone(m))
		}
	}
	return out, nil
}

func (s *memStore) ListMessages(_ context.Context, token string, chat, from int64, limit int) ([]*instachat.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.chat(token, chat) == nil {
		return nil, notFound("chat")
	}
	return firstClones(s.msgs[chatKey{token, chat}], limit, func(m *instachat.Message) bool { return m.Number > from }), nil
}

func (s *memStore) UpdateMessage(_ context.Context, token string, chat, n int64, body string, at time.Time) (*instachat.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.message(token, chat, n)
	if m == nil {
		return nil, notFound("message")
	}
	m.Body, m.UpdatedAt = body, at
	return clone(m), nil
}

// apply stores a create at once, like the embedded topology's worker.
func (s *memStore) apply(c instachat.Create) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.Chat != nil {
		s.chats[c.Chat.Token] = append(s.chats[c.Chat.Token], clone(c.Chat))
		s.app(c.Chat.Token).ChatsCount++
		return
	}
	k := chatKey{c.Message.Token, c.Message.Chat}
	s.msgs[k] = append(s.msgs[k], clone(c.Message))
	s.chat(k.token, k.chat).MessagesCount++
}

// memQueue records what is published and hands it to the store at once;
// err, when set, refuses publishing.
type memQueue struct {
	instachat.Queue
	store     *memStore
	mu        sync.Mutex
	published []instachat.Create
	err       error
}

func (q *memQueue) Enqueue(_ context.Context, creates ...instachat.Create) (func(context.Context) error, error) {
	if q.err != nil {
		return nil, q.err
	}
	q.mu.Lock()
	q.published = append(q.published, creates...)
	q.mu.Unlock()
	for _, c := range creates {
		q.store.apply(c)
	}
	return func(context.Context) error { return nil }, nil
}

// memEngine ranks every match equally, by number.
type memEngine struct{ store *memStore }

func (q memEngine) SearchMessageNumbers(_ context.Context, sq instachat.SearchQuery) ([]instachat.SearchHit, error) {
	q.store.mu.Lock()
	defer q.store.mu.Unlock()
	var out []instachat.SearchHit
	for _, m := range q.store.msgs[chatKey{sq.Token, sq.Chat}] {
		if !slices.ContainsFunc(sq.Terms, func(t string) bool { return !instachat.MatchesTerm(m.Body, t) }) {
			out = append(out, instachat.SearchHit{Number: m.Number})
		}
	}
	out = out[min(sq.Offset, len(out)):]
	return out[:min(sq.Limit, len(out))], nil
}

// ForgetScope has nothing to do: the engine searches the store's rows.
func (q memEngine) ForgetScope(context.Context, instachat.Scope) error { return nil }

// memIndexer records what it is asked to index; err, when set, fails it.
type memIndexer struct {
	mu      sync.Mutex
	indexed []*instachat.Message
	deleted []*instachat.Message
	err     error
}

func (x *memIndexer) DeleteMessages(_ context.Context, msgs []*instachat.Message) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.deleted = append(x.deleted, msgs...)
	return x.err
}

func (x *memIndexer) IndexMessages(_ context.Context, msgs []*instachat.Message) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.indexed = append(x.indexed, msgs...)
	return x.err
}
