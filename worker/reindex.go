package worker

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/instachat/instachat"
)

// reindexBatch is how many messages one bulk request of Reindex carries.
const reindexBatch = 1000

// reindexProgress is how often Reindex logs how far it got.
const reindexProgress = 5 * time.Second

// Reindex rebuilds a search index apart from the store (`instachat
// reindex`): it pages through every message of every chat of every
// application and feeds ix reindexBatch messages at a time, across chats,
// logging its progress. It can run while the deployment serves, and again
// after a failure: a message whose document holds the same or a later edit
// is left as it is.
func Reindex(ctx context.Context, store instachat.Store, ix instachat.Indexer, logger *slog.Logger) error {
	start, logged := time.Now(), time.Now()
	var apps, chats, indexed int
	batch := make([]*instachat.Message, 0, reindexBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := ix.IndexMessages(ctx, batch); err != nil {
			return fmt.Errorf("reindex: after %d messages: %w", indexed, err)
		}
		indexed += len(batch)
		batch = batch[:0]
		if time.Since(logged) >= reindexProgress {
			logged = time.Now()
			logger.Info("reindexing", "applications", apps, "chats", chats, "messages", indexed)
		}
		return nil
	}
	for after := ""; ; {
		page, err := store.ListApplications(ctx, after, reindexBatch)
		if err != nil {
			return err
		}
		for _, app := range page {
			for chatAfter := int64(0); ; {
				cs, err := store.ListChats(ctx, app.Token, chatAfter, reindexBatch)
				if err != nil {
					return err
				}
				for _, c := range cs {
					for msgAfter := int64(0); ; {
						limit := reindexBatch - len(batch)
						msgs, err := store.ListMessages(ctx, app.Token, c.Number, msgAfter, limit)
						if err != nil {
							return err
						}
						batch = append(batch, msgs...)
						if len(batch) == reindexBatch {
							if err := flush(); err != nil {
								return err
							}
						}
						if len(msgs) < limit {
							break
						}
						msgAfter = msgs[len(msgs)-1].Number
					}
					chats++
				}
				if len(cs) < reindexBatch {
					break
				}
				chatAfter = cs[len(cs)-1].Number
			}
			apps++
		}
		if len(page) < reindexBatch {
			break
		}
		after = page[len(page)-1].Token
	}
	if err := flush(); err != nil {
		return err
	}
	logger.Info("search index rebuilt from the store", "applications", apps, "chats", chats, "messages", indexed,
		"took", time.Since(start).Round(time.Millisecond))
	return nil
}
