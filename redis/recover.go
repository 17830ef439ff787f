package redis

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/instachat/instachat"
)

// recover installs in key the highest number issued in the application
// (chat == 0) or the chat, as Recover reports it, so that the script can run
// again above it.
func (s *Sequencer) recover(ctx context.Context, token string, chat int64, key string) error {
	if s.Recover == nil || s.knownUnknown(token) {
		return notFound(chat)
	}
	return s.shared(ctx, key, func() error {
		// A recovery that ended since the script ran, in this process or
		// another, has installed the key: nothing to ask.
		if n, err := s.client.Do(ctx, s.client.B().Exists().Key(key).Build()).AsInt64(); err != nil || n == 1 {
			return unavailable(err)
		}
		n, err := s.Recover(ctx, token, chat)
		if err == nil && s.RecoverGrace > 0 {
			// An unknown token has had its answer without waiting. For a
			// known one, let the publishes in flight at the loss land or
			// fail, then ask again, now that the queue holds them.
			select {
			case <-time.After(s.RecoverGrace):
			case <-ctx.Done():
				return unavailable(ctx.Err())
			}
			n, err = s.Recover(ctx, token, chat)
		}
		if instachat.ErrorCode(err) == instachat.ENOTFOUND {
			s.rememberUnknown(token)
			return notFound(0)
		}
		if err != nil {
			return fmt.Errorf("redis: recover numbering: %w", err)
		}
		return s.install(ctx, key, n)
	})
}

func notFound(chat int64) error {
	if chat == 0 {
		return instachat.Errorf(instachat.ENOTFOUND, "application not found")
	}
	return instachat.Errorf(instachat.ENOTFOUND, "chat not found")
}

// maxUnknown bounds the negative cache. A flood of distinct tokens past it
// reaches Recover, which should answer them from the store cheaply.
const maxUnknown = 10000

// knownUnknown reports whether Recover said, less than NotFoundTTL ago, that
// it does not know token.
func (s *Sequencer) knownUnknown(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	until, ok := s.unknown[token]
	return ok && time.Now().Before(until)
}

func (s *Sequencer) rememberUnknown(token string) {
	if s.NotFoundTTL <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if len(s.unknown) >= maxUnknown {
		maps.DeleteFunc(s.unknown, func(_ string, until time.Time) bool { return !now.Before(until) })
	}
	if len(s.unknown) < maxUnknown {
		s.unknown[token] = now.Add(s.NotFoundTTL)
	}
}

// flight is a recovery under way; callers that find it wait for done.
type flight struct {
	done chan struct{}
	err  error
}

// shared runs fn for key once at a time in this process: callers arriving
// while it runs take its result rather than call Recover again.
func (s *Sequencer) shared(ctx context.Context, key string, fn func() error) error {
	for {
		s.mu.Lock()
		f, running := s.flights[key]
		if !running {
			f = &flight{done: make(chan struct{})}
			s.flights[key] = f
		}
		s.mu.Unlock()
		if !running {
			// Deferred so that a panicking Recover does not leave the key
			// blocked for every later caller.
			defer func() {
				s.mu.Lock()
				delete(s.flights, key)
				s.mu.Unlock()
				close(f.done)
			}()
			f.err = fn()
			return f.err
		}
		select {
		case <-f.done:
		case <-ctx.Done():
			return unavailable(ctx.Err())
		}
		// The end of the leader's request is no answer to this one, whose
		// context may live on: lead the next attempt.
		if !errors.Is(f.err, context.Canceled) && !errors.Is(f.err, context.DeadlineExceeded) {
			return f.err
		}
	}
}
