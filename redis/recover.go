package redis

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime/debug"
	"time"

	"github.com/instachat/instachat"
)

// recover installs in key the highest number issued in the scope, as
// Recover reports it, so that the script can run again above it.
func (s *Sequencer) recover(ctx context.Context, scope instachat.Scope, key string) error {
	if s.Recover == nil || s.knownUnknown(scope.Token) {
		return notFound(scope)
	}
	return s.shared(ctx, key, func(ctx context.Context) error {
		// A recovery that ended between the look above and this one's
		// start has, for an unknown token, filled the cache: asking again
		// would be a second Recover call for it within NotFoundTTL.
		if s.knownUnknown(scope.Token) {
			return notFound(scope)
		}
		// A recovery that ended since the script ran, in this process or
		// another, has installed the key: nothing to ask.
		if n, err := s.client.Do(ctx, s.client.B().Exists().Key(key).Build()).AsInt64(); err != nil || n == 1 {
			return unavailable(err)
		}
		n, err := s.Recover(ctx, scope)
		if err == nil && s.RecoverGrace > 0 {
			// An unknown token has had its answer without waiting. For a
			// known one, let the publishes in flight at the loss land or
			// fail, then ask again, now that the queue holds them.
			select {
			case <-time.After(s.RecoverGrace):
			case <-ctx.Done():
				return unavailable(ctx.Err())
			}
			n, err = s.Recover(ctx, scope)
		}
		if instachat.ErrorCode(err) == instachat.ENOTFOUND && !scope.ChatNumbers() {
			// The application was confirmed, so the store does not know
			// the chat: it is deleted (a chat not stored yet has its
			// number's highest message, 0 at the least). Recovered as
			// deleted, it is never numbered again.
			return s.Delete(ctx, scope)
		}
		if instachat.ErrorCode(err) == instachat.ENOTFOUND {
			s.rememberUnknown(scope.Token)
			return instachat.ErrApplicationNotFound
		}
		if err != nil {
			return fmt.Errorf("redis: recover numbering: %w", err)
		}
		return s.install(ctx, key, n)
	})
}

// notFound is the error of a scope whose numbers cannot be issued: the
// application's, or the chat's, which is not there.
func notFound(s instachat.Scope) error {
	if s.ChatNumbers() {
		return instachat.ErrApplicationNotFound
	}
	return instachat.ErrChatNotFound
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
	return ok && s.now().Before(until)
}

func (s *Sequencer) rememberUnknown(token string) {
	if s.NotFoundTTL <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if len(s.unknown) >= maxUnknown {
		maps.DeleteFunc(s.unknown, func(_ string, until time.Time) bool { return !now.Before(until) })
	}
	if len(s.unknown) < maxUnknown {
		s.unknown[token] = now.Add(s.NotFoundTTL)
	}
}

func (s *Sequencer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// flight is a recovery under way; callers that find it wait for done.
type flight struct {
	done chan struct{}
	err  error
}

// shared runs fn for key once at a time in this process: callers arriving
// while it runs take its result rather than call Recover again.
//
// fn runs detached from the request that starts it, under
// RecoverTimeout: a recovery waits out RecoverGrace and the queue, longer
// than many clients wait for an answer, and one that died with each
// impatient request would start over with the next and never finish. A
// caller whose context ends stops waiting, and the recovery goes on for the
// next caller to join.
func (s *Sequencer) shared(ctx context.Context, key string, fn func(context.Context) error) error {
	for {
		s.mu.Lock()
		f, running := s.flights[key]
		if !running {
			f = &flight{done: make(chan struct{})}
			s.flights[key] = f
			go s.fly(ctx, key, f, fn)
		}
		s.mu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return unavailable(ctx.Err())
		}
		// A recovery that ran out of RecoverTimeout is no answer to this
		// caller, whose context may live on: lead the next attempt.
		if !errors.Is(f.err, context.DeadlineExceeded) {
			return f.err
		}
	}
}

// fly runs fn for f under a context that keeps ctx's values but not its
// end, bounded by RecoverTimeout.
func (s *Sequencer) fly(ctx context.Context, key string, f *flight, fn func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cmp.Or(s.RecoverTimeout, DefaultRecoverTimeout))
	defer func() {
		cancel()
		// A panicking Recover must neither kill the process, as it runs
		// on no request's goroutine, nor leave the key blocked.
		if v := recover(); v != nil {
			f.err = fmt.Errorf("redis: recovering %s panicked: %v\n%s", key, v, debug.Stack())
		}
		s.mu.Lock()
		delete(s.flights, key)
		s.mu.Unlock()
		close(f.done)
	}()
	f.err = fn(ctx)
}
