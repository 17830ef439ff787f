package feedtest

import (
	"slices"
	"testing"

	"github.com/instachat/instachat"
)

// The rows of an application as every SQL store held them before
// revisions, which each store's test of that migration writes in its old
// schema: chats stored out of number order, number 3 lost, and messages
// interleaved in no number order, chat 1's skipping number 3, chat 5's
// without a chat row. Each message is {chat, number}.
var (
	OldChats    = []int64{2, 1, 4}
	OldMessages = [][2]int64{{1, 2}, {2, 1}, {1, 1}, {1, 4}, {5, 1}, {1, 5}, {2, 2}}
)

// WantOldRowsNumbered checks the feeds of application token, whose
// OldChats and OldMessages the migration has numbered: each chat's and the
// application's history is that of a feed that created them in number
// order, at the revision of its last event.
func WantOldRowsNumbered(t testing.TB, feeds instachat.Feeds, token string) {
	t.Helper()
	ctx := t.Context()
	for chat, want := range map[int64][]string{
		1: {"message.created 1@1", "message.created 2@2", "message.created 4@3", "message.created 5@4"},
		2: {"message.created 1@1", "message.created 2@2"},
		4: nil,
	} {
		page, err := feeds.ListChanges(ctx, instachat.ChangesQuery{Topic: instachat.Topic{Token: token, Chat: chat}, Limit: 10})
		if err != nil {
			t.Fatalf("ListChanges(chat %d): %v", chat, err)
		}
		if got := Names(page.Events); !slices.Equal(got, want) || page.Revision != int64(len(want)) {
			t.Errorf("chat %d after the migration: %v at revision %d; want %v at %d", chat, got, page.Revision, want, len(want))
		}
	}
	page, err := feeds.ListChanges(ctx, instachat.ChangesQuery{Topic: instachat.Topic{Token: token}, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := Names(page.Events), []string{"chat.created 1@1", "chat.created 2@2",
		"chat.created 4@3"}; !slices.Equal(got, want) || page.Revision != 3 {
		t.Errorf("application after the migration: %v at revision %d; want %v at 3", got, page.Revision, want)
	}
}
