package redis

import (
	"testing"
	"time"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/conformance"
	"github.com/instachat/instachat/internal/testenv"
)

// The suites again on a Redis Cluster (INSTACHAT_TEST_REDIS_CLUSTER_URL;
// .ci/redis-cluster starts one): every script must touch the keys of one
// slot, and the client must follow the slots to their nodes. A script
// whose keys crossed slots fails here with CROSSSLOT, which a single
// server never reports.

func TestClusterConformance(t *testing.T) {
	conformance.TestSequencer(t, func(t *testing.T) (a, b instachat.Sequencer) {
		url, prefix := testenv.RedisClusterPrefix(t)
		return openAt(t, url, prefix), openAt(t, url, prefix)
	})
}

func TestClusterRateLimiterConformance(t *testing.T) {
	conformance.TestRateLimiter(t, func(t *testing.T, limit instachat.RateLimit) (a, b instachat.RateLimiter) {
		url, prefix := testenv.RedisClusterPrefix(t)
		return openAt(t, url, prefix).RateLimiter(limit), openAt(t, url, prefix).RateLimiter(limit)
	})
}

func TestClusterBrokerConformance(t *testing.T) {
	conformance.TestBroker(t, func(t *testing.T, buffer int) (a, b instachat.Broker) {
		url, prefix := testenv.RedisClusterPrefix(t)
		return openBrokerAt(t, url, prefix, buffer), openBrokerAt(t, url, prefix, buffer)
	})
}

// TestClusterSpreadsApplications checks that the cluster is one: the
// applications' keys land on more than one node, so the suites above ran
// their scripts on several masters, not all on one.
func TestClusterSpreadsApplications(t *testing.T) {
	url, prefix := testenv.RedisClusterPrefix(t)
	s := openAt(t, url, prefix)
	if n := len(s.client.Nodes()); n < 2 {
		t.Fatalf("INSTACHAT_TEST_REDIS_CLUSTER_URL reaches %d node, want a cluster of several", n)
	}
	nodes := map[string]bool{}
	for range 32 {
		token := instachat.NewToken()
		if err := s.AddApplication(t.Context(), token); err != nil {
			t.Fatal(err)
		}
	}
	for addr, node := range s.client.Nodes() {
		for cursor := uint64(0); ; {
			e, err := node.Do(t.Context(), node.B().Scan().Cursor(cursor).Match(prefix+"*").Count(1000).Build()).AsScanEntry()
			if err != nil {
				t.Fatal(err)
			}
			if len(e.Elements) > 0 {
				nodes[addr] = true
			}
			if cursor = e.Cursor; cursor == 0 || nodes[addr] {
				break
			}
		}
	}
	if len(nodes) < 2 {
		t.Errorf("32 applications all on the nodes %v, want them spread over the cluster", nodes)
	}
}

// TestClusterLostChatKeyRecovers checks loss recovery on a cluster: the
// chat script writes the key of a chat it issues, undeclared but in the
// application's slot, and recovery installs a lost one.
func TestClusterLostChatKeyRecovers(t *testing.T) {
	url, prefix := testenv.RedisClusterPrefix(t)
	s := openAt(t, url, prefix)
	token := instachat.NewToken()
	l := newLedger(token)
	s.Recover, s.RecoverGrace = l.Recover, 10*time.Millisecond
	if err := s.AddApplication(t.Context(), token); err != nil {
		t.Fatal(err)
	}
	nextChat(t, s, l, token)
	for range 3 {
		n, err := s.NextMessageNumber(t.Context(), token, 1)
		if err != nil {
			t.Fatal(err)
		}
		l.issued(1, n)
	}
	testenv.DeleteRedisKeys(t, url, prefix+"*")
	if n, err := s.NextMessageNumber(t.Context(), token, 1); err != nil || n != 4 {
		t.Errorf("after the loss, next message %d, %v; want 4", n, err)
	}
	if n := nextChat(t, s, l, token); n != 2 {
		t.Errorf("after the loss, next chat %d, want 2", n)
	}
}
