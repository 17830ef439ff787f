package worker_test

import (
	"context"
	"errors"
	"testing"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/worker"
)

// store refuses, for good, any batch that holds a message whose body is
// "poison" — as a real store refuses a create it can never keep — and fails
// transiently while down is set.
type store struct {
	instachat.Store
	down    bool
	applied []int64
}

func (s *store) ApplyCreates(_ context.Context, batch []instachat.Create) error {
	if s.down {
		return errors.New("connection refused")
	}
	for _, c := range batch {
		if c.Message.Body == "poison" {
			return instachat.Errorf(instachat.EINVALID, "refused")
		}
	}
	for _, c := range batch {
		s.applied = append(s.applied, c.Message.Number)
	}
	return nil
}

type queue struct {
	instachat.Queue
	dead []int64
}

func (q *queue) DeadLetter(_ context.Context, c instachat.Create, reason error) error {
	if instachat.ErrorCode(reason) != instachat.EINVALID {
		panic("dead letter without the store's reason")
	}
	q.dead = append(q.dead, c.Message.Number)
	return nil
}

type indexer struct {
	fail    bool
	indexed []int64
}

func (x *indexer) DeleteMessages(context.Context, []*instachat.Message) error {
	panic("the index consumer deletes nothing")
}

func (x *indexer) IndexMessages(_ context.Context, msgs []*instachat.Message) error {
	if x.fail {
		return errors.New("index unreachable")
	}
	for _, m := range msgs {
		x.indexed = append(x.indexed, m.Number)
	}
	return nil
}

func batch(bodies ...string) []instachat.Create {
	var b []instachat.Create
	for i, body := range bodies {
		b = append(b, instachat.Create{Message: &instachat.Message{Token: "t", Chat: 1, Number: int64(i + 1), Body: body}})
	}
	return b
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestPoisonCreatesAreSetAsideAndTheRestApplyInOrder(t *testing.T) {
	s, q := &store{}, &queue{}
	w := &worker.Worker{Queue: q, Store: s}
	if err := w.Handle(context.Background(), batch("a", "poison", "c", "d", "poison", "f", "g")); err != nil {
		t.Fatal(err)
	}
	if want := []int64{1, 3, 4, 6, 7}; !equal(s.applied, want) {
		t.Errorf("applied %v, want %v", s.applied, want)
	}
	if want := []int64{2, 5}; !equal(q.dead, want) {
		t.Errorf("dead-lettered %v, want %v", q.dead, want)
	}
}

func TestTransientFailureGoesBackToTheQueue(t *testing.T) {
	s, q := &store{down: true}, &queue{}
	w := &worker.Worker{Queue: q, Store: s}
	if err := w.Handle(context.Background(), batch("a", "b")); err == nil {
		t.Fatal("Handle returned nil while the store was down: the batch would be acknowledged and lost")
	}
	if len(q.dead) != 0 {
		t.Fatalf("a transient failure dead-lettered %v", q.dead)
	}
	s.down = false
	if err := w.Handle(context.Background(), batch("a", "b")); err != nil || !equal(s.applied, []int64{1, 2}) {
		t.Fatalf("after recovery: err %v, applied %v", err, s.applied)
	}
}

func TestIndexHandsOnlyMessagesAndReportsFailure(t *testing.T) {
	x := &indexer{}
	b := append(batch("a", "b"), instachat.Create{Chat: &instachat.Chat{Token: "t", Number: 2}})
	if err := worker.Index(x)(context.Background(), b); err != nil || !equal(x.indexed, []int64{1, 2}) {
		t.Fatalf("err %v, indexed %v, want messages 1 and 2 only", err, x.indexed)
	}
	x.fail = true
	if err := worker.Index(x)(context.Background(), batch("c")); err == nil {
		t.Fatal("Index returned nil though indexing failed: the queue would move on and the message never be searchable")
	}
}

// deletions answers DeletedChats from a set, or fails.
type deletions struct {
	gone  map[instachat.Scope]bool
	err   error
	asked [][]instachat.Scope
}

func (d *deletions) DeletedChats(_ context.Context, chats []instachat.Scope) (map[instachat.Scope]bool, error) {
	d.asked = append(d.asked, chats)
	out := map[instachat.Scope]bool{}
	for _, s := range chats {
		if d.gone[s] {
			out[s] = true
		}
	}
	return out, d.err
}

// TestIndexUndeletedDropsTheMessagesOfDeletedChats: the messages of a
// chat the store says is deleted are not indexed, the others are; the
// store is asked once per batch, each chat once; a store that cannot tell
// fails the batch, which the queue hands again.
func TestIndexUndeletedDropsTheMessagesOfDeletedChats(t *testing.T) {
	b := batch("a", "b")
	for n := int64(3); n <= 4; n++ {
		b = append(b, instachat.Create{Message: &instachat.Message{Token: "t", Chat: 2, Number: n, Body: "in a deleted chat"}})
	}
	b = append(b, instachat.Create{Chat: &instachat.Chat{Token: "t", Number: 3}})
	x := &indexer{}
	d := &deletions{gone: map[instachat.Scope]bool{instachat.MessagesOf("t", 2): true}}
	if err := worker.IndexUndeleted(x, d)(context.Background(), b); err != nil || !equal(x.indexed, []int64{1, 2}) {
		t.Fatalf("err %v, indexed %v, want messages 1 and 2 only", err, x.indexed)
	}
	if len(d.asked) != 1 || len(d.asked[0]) != 2 {
		t.Errorf("asked about %v, want chats 1 and 2 in one call", d.asked)
	}
	x.indexed = nil
	if err := worker.IndexUndeleted(x, d)(context.Background(), b[2:4]); err != nil || len(x.indexed) != 0 {
		t.Errorf("a batch of a deleted chat only: err %v, indexed %v, want nothing indexed", err, x.indexed)
	}
	d.err = errors.New("store down")
	if err := worker.IndexUndeleted(x, d)(context.Background(), batch("c")); err == nil || len(x.indexed) != 0 {
		t.Errorf("with the store down: err %v, indexed %v; want the batch failed, nothing indexed", err, x.indexed)
	}
}
