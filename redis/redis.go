// Package redis is the production Sequencer: chat and message numbers kept in
// Redis, so that every dispatcher process draws from one numbering.
//
// # What is stored
//
// Under the key prefix P, for the application with token T:
//
//	P{T}:chats  the last chat number issued; the application exists iff it does
//	P{T}:c:N    the last message number issued in chat N, created at 0 with the chat
//	P{T}:k:K    the receipt of idempotency key K, expiring (see NextNumberOnce)
//	P{T}:rc:N   the key K whose receipt issued chat N, expiring with it
//	P{T}:rm:C:M the key K whose receipt issued message M of chat C, likewise
//
// Delete sets P{T}:chats, or P{T}:c:N, to "deleted": the scripts refuse to
// issue under it (ENOTFOUND) on every process at once, and refuse a retry
// whose receipt is in it. Delete of a chat, and EraseReceipt of a message,
// overwrite the fingerprint of the receipt that issued it (found by its
// rc: or rm: key), so that a retry of its create answers not found. A deleted chat's key
// lost with the rest is recovered as deleted, because the store answers
// that the chat is not found; a deleted application's token is unknown to
// the store, so it is never recovered at all.
//
// A create costs one round trip: a Lua script (EVALSHA, EVAL the first time
// a server lacks it) that checks existence and increments atomically. A
// block of message numbers (NextMessageNumbers) costs one too: the script
// increments by the block's size.
// AddApplication is SET NX, so it never resets a numbering. The hash tag {T}
// puts an application's keys in one Redis Cluster slot (P should hold no
// braces). The chat script writes the new chat's key without declaring it,
// as its name follows from the INCR; Redis Cluster allows that within the
// slot, though during a slot migration it fails, as EUNAVAILABLE, until the
// migration ends.
//
// # Losing state
//
// Redis is a cache of what the store holds plus what is still queued, and it
// can lose keys: a restart without its data, a flush, eviction. Numbering
// again from 1 would issue numbers that are stored or in flight, so a missing
// key is never read as zero. The application key missing means unknown or
// lost; a chat key missing for a chat at or below the application's last chat
// number means lost, because the script that issues a chat creates its key.
//
// On loss the sequencer asks Recover for the highest number issued, installs
// it with SET NX and runs the script again. Recover waits until the queue has
// no unconsumed create, so that the store holds every issued number, then
// reads Store.HighestNumber. SET NX makes the recoveries that many processes
// run at once agree on the first value written; every candidate is at least
// the highest number issued before the loss, so any of them is safe. In one
// process, concurrent recoveries of one key share one Recover call, run
// apart from the requests that wait for it: a client that gives up does not
// stop it, and the callers after it join it rather than start over.
//
// Without a Recover (nil), lost state reads as unknown: ENOTFOUND. That suits
// tests and a Redis that never loses data; production wiring sets Recover.
//
// Telling an unknown token from a lost one takes a Recover call, so a token
// that Recover says is unknown is answered ENOTFOUND without asking again for
// NotFoundTTL. The entry is per process: AddApplication clears it in the
// process that makes the application, while another process may answer
// ENOTFOUND for up to NotFoundTTL if it was asked about the token before the
// application existed. Tokens are random and published only once the
// application exists, so only a client that asked about a token before it was
// issued could see that.
//
// # Residual window
//
// A number issued just before the loss whose Publish is still under way when
// Recover reads the queue is in neither the queue nor the store, and would be
// issued again. RecoverGrace, set to the queue's publish timeout, closes that
// window: once Recover has confirmed the application, the sequencer waits
// RecoverGrace, by when such a publish has landed or failed, and asks again.
// What stays open: a dispatcher stalled between its number and its publish
// for longer than RecoverGrace (a long pause, a suspended VM), and a second
// loss between one process's Recover and its SET NX, which can install a
// value read before another process issued numbers. Either issues a number
// twice, and the store keeps only the first create with it.
//
// Only missing keys are detected. A key that survives with an older value —
// a restore from an older snapshot, a failover to a replica that lagged —
// issues numbers again; run Redis with appendonly and noeviction, and after
// such a rollback delete the prefix's keys to turn it into a loss recovery
// handles.
package redis

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/rueidis"

	"github.com/instachat/instachat"
)

// Sequencer implements instachat.Sequencer on Redis. Set its fields before
// first use.
type Sequencer struct {
	// Recover returns the highest number already issued in the scope (the
	// application's chats or a chat's messages), waiting first until the queue has no
	// unconsumed create so that the store holds every issued number. It
	// returns ENOTFOUND for an unknown application, and should do so before
	// waiting on the queue: applications are stored before they are
	// numbered, so the store alone can tell.
	Recover func(ctx context.Context, s instachat.Scope) (int64, error)
	// RecoverGrace is how long a recovery waits for publishes that were in
	// flight at the loss; set it to the queue's publish timeout.
	RecoverGrace time.Duration
	// RecoverTimeout bounds one recovery, Recover calls and grace
	// included; zero means DefaultRecoverTimeout. A recovery runs apart
	// from the requests that wait for it, so that it completes however
	// short their timeouts.
	RecoverTimeout time.Duration
	// NotFoundTTL is how long this process remembers that Recover did not
	// know a token (0: not at all). Open sets 5s.
	NotFoundTTL time.Duration
	// Now is the clock NotFoundTTL runs on; nil means time.Now.
	Now func() time.Time
	// ReceiptTTL is how long an idempotency receipt answers retries; zero
	// means instachat.DefaultReceiptTTL.
	ReceiptTTL time.Duration

	client rueidis.Client
	prefix string

	mu      sync.Mutex
	unknown map[string]time.Time // token → when Recover may be asked again
	flights map[string]*flight   // key → its recovery under way
}

var _ instachat.Sequencer = (*Sequencer)(nil)

// DefaultRecoverTimeout is the RecoverTimeout of a zero field: room for the
// grace and for workers to drain a queue that grew while numbering was lost.
const DefaultRecoverTimeout = time.Minute

// parseURL reads the options of a redis:// URL for the sequencer and the
// broker alike. Its error leaves the URL out: url.Error quotes it, password
// included.
func parseURL(rawURL string) (rueidis.ClientOption, error) {
	opt, err := rueidis.ParseURL(rawURL)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return opt, fmt.Errorf("redis: invalid URL: %w", err)
	}
	return opt, nil
}

// Open connects to the Redis at rawURL (redis://[user:password@]host:port/db)
// and keeps its keys under prefix. It returns EUNAVAILABLE when Redis cannot
// be reached.
func Open(rawURL, prefix string) (*Sequencer, error) {
	opt, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	// The sequencer never reads through a cache, so it needs no tracking.
	opt.DisableCache = true
	client, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, unavailable(err)
	}
	return &Sequencer{
		NotFoundTTL: 5 * time.Second,
		client:      client,
		prefix:      prefix,
		unknown:     map[string]time.Time{},
		flights:     map[string]*flight{},
	}, nil
}

// Close closes the connections to Redis.
func (s *Sequencer) Close() { s.client.Close() }

// What the scripts answer instead of a number.
const (
	lostApp  = -1 // the application's key is missing: unknown, or lost
	lostChat = -2 // a chat at or below the last chat number has no key: lost
	noChat   = -3 // the chat is above the last chat number: never issued
	goneApp  = -4 // the application is deleted
	goneChat = -5 // the chat is deleted
)

// deleted is the value of a deleted application's or chat's key.
const deleted = "deleted"

// Delete implements instachat.Sequencer: the key becomes "deleted", which
// no script issues under. It is written whether the key exists or not, so a
// key lost before the deletion cannot be recovered as live.
//
// A chat's deletion also erases the receipt that issued it, if one is kept;
// an application's needs none: its receipts all answer not found, since the
// scripts check the application's key first.
func (s *Sequencer) Delete(ctx context.Context, scope instachat.Scope) error {
	key := s.appKey(scope.Token)
	if scope.Chat > 0 {
		key = s.chatKey(scope.Token, strconv.FormatInt(scope.Chat, 10))
	} else if scope.Chat < 0 {
		return nil
	}
	if err := s.client.Do(ctx, s.client.B().Set().Key(key).Value(deleted).Build()).Error(); err != nil {
		return unavailable(err)
	}
	if scope.Chat > 0 {
		return s.EraseReceipt(ctx, instachat.ChatsOf(scope.Token), scope.Chat)
	}
	return nil
}

// EraseReceipt implements instachat.ReceiptEraser: one script run that
// finds the key whose receipt issued number in scope, if any, and
// overwrites the receipt's fingerprint with instachat.ErasedFingerprint,
// keeping its number, time and expiry.
func (s *Sequencer) EraseReceipt(ctx context.Context, scope instachat.Scope, number int64) error {
	if scope.Chat < 0 || number < 1 {
		return nil
	}
	n := strconv.FormatInt(number, 10)
	err := eraseScript.Exec(ctx, s.client, []string{s.issuedKey(scope, n)}, []string{tokenKey(s.prefix, scope.Token, "k:"), n}).Error()
	return unavailable(err)
}

// issuedKey is the key naming which idempotency key issued number n of
// the scope, or with n "" the prefix of those keys.
func (s *Sequencer) issuedKey(scope instachat.Scope, n string) string {
	if scope.ChatNumbers() {
		return tokenKey(s.prefix, scope.Token, "rc:"+n)
	}
	return tokenKey(s.prefix, scope.Token, "rm:"+strconv.FormatInt(scope.Chat, 10)+":"+n)
}

// eraseScript overwrites a receipt's fingerprint. KEYS[1] is the key
// naming the idempotency key that issued the number ARGV[2]; the receipt's
// key is ARGV[1] followed by it, in the same slot. A receipt of another
// number (its key reused since) is left alone.
var eraseScript = rueidis.NewLuaScript(`
local k = redis.call('GET', KEYS[1])
if not k then return 0 end
redis.call('DEL', KEYS[1])
local rk = ARGV[1] .. k
local r = redis.call('GET', rk)
if not r then return 0 end
local n, at = string.match(r, '^(%d+):[^:]*:(%-?%d+)$')
if n ~= ARGV[2] then return 0 end
redis.call('SET', rk, n .. ':erased:' .. at, 'KEEPTTL')
return 1`)

// chatScript issues the next chat number. KEYS[1] is the application key;
// the new chat's key, ARGV[1] followed by its number, shares its hash tag
// and so its slot. NX keeps a chat key that outlived its application key.
var chatScript = rueidis.NewLuaScript(`
local last = redis.call('GET', KEYS[1])
if not last then return -1 end
if last == 'deleted' then return -4 end
local n = redis.call('INCR', KEYS[1])
redis.call('SET', ARGV[1] .. n, 0, 'NX')
return n`)

// messageScript issues the next ARGV[2] message numbers, returning the
// last. KEYS[1] is the application key, KEYS[2] the chat key, ARGV[1] the
// chat number.
var messageScript = rueidis.NewLuaScript(`
local last = redis.call('GET', KEYS[1])
if last == 'deleted' then return -4 end
local c = redis.call('GET', KEYS[2])
if c == 'deleted' then return -5 end
if c then return redis.call('INCRBY', KEYS[2], ARGV[2]) end
if not last then return -1 end
if tonumber(ARGV[1]) > tonumber(last) then return -3 end
return -2`)

// AddApplication creates the application's key at 0 unless it exists.
func (s *Sequencer) AddApplication(ctx context.Context, token string) error {
	s.mu.Lock()
	delete(s.unknown, token)
	s.mu.Unlock()
	return s.install(ctx, s.appKey(token), 0)
}

// NextChatNumber returns ENOTFOUND if the application is unknown.
func (s *Sequencer) NextChatNumber(ctx context.Context, token string) (int64, error) {
	return s.next(ctx, chatScript, instachat.ChatsOf(token), []string{s.appKey(token)}, s.chatKey(token, ""))
}

// NextMessageNumber returns ENOTFOUND if the application or the chat is
// unknown.
func (s *Sequencer) NextMessageNumber(ctx context.Context, token string, chat int64) (int64, error) {
	return s.NextMessageNumbers(ctx, token, chat, 1)
}

// NextMessageNumbers implements instachat.Sequencer: one script run, an
// INCRBY of the chat's key, whatever n.
func (s *Sequencer) NextMessageNumbers(ctx context.Context, token string, chat int64, n int) (int64, error) {
	if n < 1 {
		return 0, fmt.Errorf("redis: a block of %d numbers", n)
	}
	if chat < 1 {
		return 0, notFound(instachat.MessagesOf(token, chat))
	}
	c := strconv.FormatInt(chat, 10)
	last, _, err := s.run(ctx, messageScript, instachat.MessagesOf(token, chat), []string{s.appKey(token), s.chatKey(token, c)}, c, strconv.Itoa(n))
	if err != nil {
		return 0, err
	}
	return last - int64(n) + 1, nil
}

// NextNumberOnce implements instachat.Sequencer. The receipt is a key of
// the application's slot, P{T}:k:KEY, holding "number:fingerprint:micros"
// and expiring after ReceiptTTL; one script reads it or issues the number
// and writes it, so racing retries on any process issue one number.
func (s *Sequencer) NextNumberOnce(ctx context.Context, scope instachat.Scope, key string,
	want instachat.Receipt) (instachat.Receipt, bool, error) {
	token := scope.Token
	ttl := instachat.ReceiptRetention(s.ReceiptTTL)
	tail := want.Fingerprint + ":" + strconv.FormatInt(want.CreatedAt.UnixMicro(), 10)
	ms := strconv.FormatInt(ttl.Milliseconds(), 10)
	receiptKey := tokenKey(s.prefix, token, "k:"+key)
	var (
		n       int64
		receipt string
		err     error
	)
	if scope.ChatNumbers() {
		n, receipt, err = s.run(ctx, chatOnceScript, scope, []string{s.appKey(token), receiptKey},
			s.chatKey(token, ""), tail, ms, s.issuedKey(scope, ""), key)
	} else if scope.Chat < 1 {
		return instachat.Receipt{}, false, notFound(scope)
	} else {
		c := strconv.FormatInt(scope.Chat, 10)
		n, receipt, err = s.run(ctx, messageOnceScript, scope, []string{s.appKey(token), s.chatKey(token, c), receiptKey},
			c, tail, ms, s.issuedKey(scope, ""), key)
	}
	if err != nil {
		return instachat.Receipt{}, false, err
	}
	if receipt == "" {
		want.Number = n
		return want, false, nil
	}
	r, err := parseReceipt(receipt)
	return r, err == nil, err
}

// chatOnceScript is chatScript with a receipt. KEYS[2] is the receipt key;
// ARGV[2] the receipt's fingerprint and time, ARGV[3] its TTL in ms,
// ARGV[4] the prefix of the keys naming which key issued a chat, ARGV[5]
// the idempotency key. A receipt found in a deleted application answers
// not found; that of a deleted chat was erased by its Delete.
var chatOnceScript = rueidis.NewLuaScript(`
local last = redis.call('GET', KEYS[1])
if last == 'deleted' then return -4 end
local r = redis.call('GET', KEYS[2])
if r then return r end
if not last then return -1 end
local n = redis.call('INCR', KEYS[1])
redis.call('SET', ARGV[1] .. n, 0, 'NX')
redis.call('SET', KEYS[2], n .. ':' .. ARGV[2], 'PX', ARGV[3])
redis.call('SET', ARGV[4] .. n, ARGV[5], 'PX', ARGV[3])
return n`)

// messageOnceScript is messageScript with a receipt. KEYS[3] is the receipt
// key; ARGV[2] the receipt's fingerprint and time, ARGV[3] its TTL in ms,
// ARGV[4] the prefix of the keys naming which key issued a message of the
// chat, ARGV[5] the idempotency key. A receipt found in a deleted
// application or chat answers not found.
var messageOnceScript = rueidis.NewLuaScript(`
local last = redis.call('GET', KEYS[1])
if last == 'deleted' then return -4 end
local c = redis.call('GET', KEYS[2])
if c == 'deleted' then return -5 end
local r = redis.call('GET', KEYS[3])
if r then return r end
if c then
  local n = redis.call('INCR', KEYS[2])
  redis.call('SET', KEYS[3], n .. ':' .. ARGV[2], 'PX', ARGV[3])
  redis.call('SET', ARGV[4] .. n, ARGV[5], 'PX', ARGV[3])
  return n
end
if not last then return -1 end
if tonumber(ARGV[1]) > tonumber(last) then return -3 end
return -2`)

// parseReceipt reads "number:fingerprint:micros".
func parseReceipt(v string) (instachat.Receipt, error) {
	parts := strings.Split(v, ":")
	if len(parts) == 3 {
		n, err1 := strconv.ParseInt(parts[0], 10, 64)
		us, err2 := strconv.ParseInt(parts[2], 10, 64)
		if err1 == nil && err2 == nil {
			return instachat.Receipt{Number: n, Fingerprint: parts[1], CreatedAt: time.UnixMicro(us).UTC()}, nil
		}
	}
	return instachat.Receipt{}, fmt.Errorf("redis: malformed receipt %q", v)
}

// maxRuns bounds the script runs of one call: a message can need the
// application and then the chat recovered before its number comes. Keys
// vanishing faster than that are an outage, not a loss to recover from.
const maxRuns = 4

// next runs script on keys (the application's, then the chat's if any) until
// it issues a number, recovering what it reports lost.
func (s *Sequencer) next(ctx context.Context, script *rueidis.Lua, scope instachat.Scope, keys []string, arg string) (int64, error) {
	n, _, err := s.run(ctx, script, scope, keys, arg)
	return n, err
}

// run is next for every script: one that keeps receipts answers a receipt
// it finds as a string, returned instead of a number.
func (s *Sequencer) run(ctx context.Context, script *rueidis.Lua, scope instachat.Scope, keys []string, args ...string) (int64, string, error) {
	for range maxRuns {
		reply, err := script.Exec(ctx, s.client, keys, args).ToMessage()
		if err != nil {
			return 0, "", unavailable(err)
		}
		if reply.IsString() {
			receipt, _ := reply.ToString()
			return 0, receipt, nil
		}
		n, err := reply.AsInt64()
		if err != nil {
			return 0, "", unavailable(err)
		}
		switch n {
		case lostApp:
			err = s.recover(ctx, instachat.ChatsOf(scope.Token), keys[0])
		case lostChat:
			err = s.recover(ctx, scope, keys[1])
		case noChat, goneChat:
			return 0, "", notFound(scope)
		case goneApp:
			return 0, "", notFound(instachat.ChatsOf(scope.Token))
		default:
			return n, "", nil
		}
		if err != nil {
			return 0, "", err
		}
	}
	return 0, "", unavailable(errors.New("numbering keys vanish as fast as they are recovered"))
}

func (s *Sequencer) appKey(token string) string { return tokenKey(s.prefix, token, "chats") }

// chatKey is the key of chat n, or with n "" the prefix of the chat keys.
func (s *Sequencer) chatKey(token, n string) string { return tokenKey(s.prefix, token, "c:"+n) }

// tokenKey is the key named suffix under prefix in the application's hash
// slot, {token}: every key of one application lives in one Redis Cluster
// slot, so one script may touch them all.
func tokenKey(prefix, token, suffix string) string { return prefix + "{" + token + "}:" + suffix }

// install sets key to n unless it exists, so that the first of several
// concurrent writers wins and nothing ever lowers a number issued.
func (s *Sequencer) install(ctx context.Context, key string, n int64) error {
	err := s.client.Do(ctx, s.client.B().Set().Key(key).Value(strconv.FormatInt(n, 10)).Nx().Build()).Error()
	if rueidis.IsRedisNil(err) { // the key existed
		return nil
	}
	return unavailable(err)
}

// errUnavailable is what a client sees of any failure to get an answer from
// Redis.
var errUnavailable = instachat.Errorf(instachat.EUNAVAILABLE, "numbering unavailable")

// unavailable translates a failed Redis call, or the end of the caller's
// context while waiting on one, into EUNAVAILABLE. The cause stays in the
// chain for logs and errors.Is. Reply errors count too: LOADING, OOM,
// READONLY and the like mean Redis cannot take the request now.
func unavailable(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("redis: %w: %w", errUnavailable, err)
}

// Ping reports whether Redis answers, for /healthz.
func (s *Sequencer) Ping(ctx context.Context) error {
	if err := s.client.Do(ctx, s.client.B().Ping().Build()).Error(); err != nil {
		return unavailable(err)
	}
	return nil
}
