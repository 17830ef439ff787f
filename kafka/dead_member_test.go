package kafka

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/instachat/instachat"
)

// helperBrokers, set in a child process's environment, makes
// TestConsumeInChildProcess consume from those brokers until killed.
const helperBrokers = "INSTACHAT_KAFKA_TEST_HELPER_BROKERS"

// TestConsumeInChildProcess is the worker that TestDeadMemberWithPendingJoin
// runs as a process of its own, so that it can die by SIGKILL, sending
// nothing more to the broker. It does nothing in a normal run.
func TestConsumeInChildProcess(t *testing.T) {
	brokers := os.Getenv(helperBrokers)
	if brokers == "" {
		t.Skip("the worker of TestDeadMemberWithPendingJoin, run only as its child process")
	}
	q, err := Open(context.Background(), Config{Brokers: strings.Split(brokers, ","), Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	q.Consume(context.Background(), func(context.Context, []instachat.Create) error { return nil })
}

// TestDeadMemberWithPendingJoin SIGKILLs a worker whose JoinGroup is
// pending: the other worker is busy with a batch when it joins, so the
// rebalance waits for that one (BlockRebalanceOnPoll) and the newcomer's
// JoinGroup stays unanswered; it dies then. The survivor must have the
// group to itself again within 30 s of finishing its batch.
//
// What bounds it depends on kfake. Seen here: kfake drops the dead member
// at its 10 s session timeout but does not then complete the rebalance the
// survivor waits in, so the survivor waits until its own JoinGroup times
// out, at the rebalance timeout plus kgo's 10 s request overhead, and joins
// again: 25 s with Consume's 15 s rebalance timeout, 70 s with kgo's
// default of 60 s. Kafka re-arms the session timer of a member in a
// pending join and completes the rebalance without it, so the 10 s session
// timeout bounds it there either way.
func TestDeadMemberWithPendingJoin(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out a dead member's pending join (about 25 s): not run with -short")
	}
	c := newCluster(t)
	survivor := open(t, c, Config{})
	busy, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	seen := make(chan []instachat.Create, 100)
	consume(t, survivor, func([]instachat.Create) error {
		once.Do(func() { close(busy); <-release })
		return nil
	}, seen)
	publish(t, survivor, messages(1, tokens(1)...))
	select {
	case <-busy:
	case <-time.After(20 * time.Second):
		t.Fatal("the first worker never received its batch")
	}

	child := exec.Command(os.Args[0], "-test.run=^TestConsumeInChildProcess$")
	child.Env = append(os.Environ(), helperBrokers+"="+strings.Join(c.ListenAddrs(), ","))
	child.Stdout, child.Stderr = t.Output(), t.Output()
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { child.Wait(); close(exited) }()
	t.Cleanup(func() { child.Process.Kill(); <-exited })
	waitRebalancing(t, c, 2)
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-exited
	close(release)

	start := time.Now()
	adm := kadm.NewClient(rawClient(t, c))
	for {
		groups, err := adm.DescribeGroups(t.Context(), "instachat-workers")
		g := groups["instachat-workers"]
		if err == nil && g.State == "Stable" && len(g.Members) == 1 {
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("the group is not the survivor's alone %v after its batch: %s with %d members",
				time.Since(start).Round(time.Millisecond), g.State, len(g.Members))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("the group is the survivor's alone %v after its batch", time.Since(start).Round(time.Millisecond))
	// Eight tokens over four partitions: all of them come through.
	want := messages(5, tokens(8)...)
	publish(t, survivor, want)
	if err := sameSet(collect(t, seen, len(want)+1)[1:], want); err != nil {
		t.Error(err)
	}
}

// waitRebalancing waits until the group prepares a rebalance with n
// members.
func waitRebalancing(t testing.TB, c *kfake.Cluster, n int) {
	t.Helper()
	adm := kadm.NewClient(rawClient(t, c))
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		groups, err := adm.DescribeGroups(t.Context(), "instachat-workers")
		if g := groups["instachat-workers"]; err == nil && g.State == "PreparingRebalance" && len(g.Members) == n {
			return
		}
	}
	t.Fatalf("the group never prepared a rebalance with %d members", n)
}
