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
	s, q, x := &store{}, &queue{}, &indexer{}
	w := &worker.Worker{Queue: q, Store: s, Indexer: x}
	if err := w.Handle(context.Background(), batch("a", "poison", "c", "d", "poison", "f", "g")); err != nil {
		t.Fatal(err)
	}
	if want := []int64{1, 3, 4, 6, 7}; !equal(s.applied, want) {
		t.Errorf("applied %v, want %v", s.applied, want)
	}
	if want := []int64{2, 5}; !equal(q.dead, want) {
		t.Errorf("dead-lettered %v, want %v", q.dead, want)
	}
	if want := []int64{1, 3, 4, 6, 7}; !equal(x.indexed, want) {
		t.Errorf("indexed %v, want %v (never a dead-lettered message)", x.indexed, want)
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

func TestIndexFailureRedeliversTheBatch(t *testing.T) {
	w := &worker.Worker{Queue: &queue{}, Store: &store{}, Indexer: &indexer{fail: true}}
	if err := w.Handle(context.Background(), batch("a")); err == nil {
		t.Fatal("Handle returned nil though indexing failed: the message would never be searchable")
	}
}
