// Package feed delivers the change feeds of issue 11: Publisher puts every
// committed change on a Broker, and Streamer turns a Broker and the store's
// Feeds into resumable streams — replay from any revision, then synced,
// then each live change, one revision after the other — for the transports
// in package http to write out.
package feed

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/instachat/instachat"
)

// Publisher is a Store that publishes what it committed: once the inner
// store's ApplyCreates, UpdateMessage or UpdateChat returned nil, the
// transaction has committed, and the changes it made go to Broker —
// message.created and message.updated on the chat's topic, chat.created
// and chat.updated on the application's. A client that receives an event
// can read what it names at once.
//
// Publishing is best effort: a publish that fails (or a process that dies
// between commit and publish) loses nothing, since subscribers that see a
// revision jump fill it from the store. Its failure is logged, never
// returned, because the change it reports is stored.
type Publisher struct {
	instachat.Store
	Broker instachat.Broker
	Logger *slog.Logger // nil means slog.Default()
}

// publishTimeout bounds one publish: the change is stored already, and a
// broker that does not answer must not hold up the worker or the request.
const publishTimeout = 2 * time.Second

// maxConcurrentPublishes bounds the publishes of one batch in flight at
// once: a batch touching many chats publishes one topic each, and a remote
// broker pipelines concurrent publishes on its connection.
const maxConcurrentPublishes = 32

// ApplyCreates stores the batch, then publishes each create the store
// inserted (one it skipped as stored already carries no revision): chats
// on their application's topic, messages on their chat's, each topic's
// events in revision order in one publish.
func (p *Publisher) ApplyCreates(ctx context.Context, creates []instachat.Create) error {
	if err := p.Store.ApplyCreates(ctx, creates); err != nil {
		return err
	}
	byTopic := map[instachat.Topic][]instachat.Event{}
	var order []instachat.Topic
	add := func(topic instachat.Topic, e instachat.Event) {
		if _, ok := byTopic[topic]; !ok {
			order = append(order, topic)
		}
		byTopic[topic] = append(byTopic[topic], e)
	}
	for _, c := range creates {
		switch {
		case c.Chat != nil && c.Chat.AppRevision > 0:
			ch := *c.Chat
			add(instachat.Topic{Token: ch.Token}, instachat.Event{Event: instachat.EventChatCreated, Revision: ch.AppRevision, Chat: &ch})
		case c.Message != nil && c.Message.Revision > 0:
			m := *c.Message
			add(instachat.Topic{Token: m.Token, Chat: m.Chat}, instachat.Event{Event: instachat.EventMessageCreated, Revision: m.Revision, Message: &m})
		}
	}
	if len(order) == 1 {
		p.publish(ctx, order[0], byTopic[order[0]])
		return nil
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxConcurrentPublishes)
	for _, topic := range order {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			p.publish(ctx, topic, byTopic[topic])
		})
	}
	wg.Wait()
	return nil
}

// UpdateMessage stores the edit, then publishes message.updated.
func (p *Publisher) UpdateMessage(ctx context.Context, token string, chat, number int64, body string, at time.Time) (*instachat.Message, error) {
	m, err := p.Store.UpdateMessage(ctx, token, chat, number, body, at)
	if err != nil {
		return nil, err
	}
	mc := *m
	p.publish(ctx, instachat.Topic{Token: token, Chat: chat},
		[]instachat.Event{{Event: instachat.EventMessageUpdated, Revision: m.Revision, Message: &mc}})
	return m, nil
}

// UpdateChat stores the rename, then publishes chat.updated.
func (p *Publisher) UpdateChat(ctx context.Context, token string, number int64, name string, at time.Time) (*instachat.Chat, error) {
	c, err := p.Store.UpdateChat(ctx, token, number, name, at)
	if err != nil {
		return nil, err
	}
	cc := *c
	p.publish(ctx, instachat.Topic{Token: token}, []instachat.Event{{Event: instachat.EventChatUpdated, Revision: c.AppRevision, Chat: &cc}})
	return c, nil
}

// DeleteMessage stores the deletion, then publishes message.deleted with
// the tombstone.
func (p *Publisher) DeleteMessage(ctx context.Context, token string, chat, number int64, at time.Time) (*instachat.Message, error) {
	m, err := p.Store.DeleteMessage(ctx, token, chat, number, at)
	if err != nil {
		return nil, err
	}
	deleted := instachat.Event{Event: instachat.EventMessageDeleted, Revision: m.Revision, Message: m.Tombstone()}
	p.publish(ctx, instachat.Topic{Token: token, Chat: chat}, []instachat.Event{deleted})
	return m, nil
}

// DeleteChat stores the deletion, then publishes chat.deleted on the
// application's topic, and on the chat's as the last event its streams
// write: at the chat's revision, which the deletion does not advance; each
// stream writes it one revision past it (see Stream.final).
func (p *Publisher) DeleteChat(ctx context.Context, token string, number int64, at time.Time) (*instachat.Chat, error) {
	c, err := p.Store.DeleteChat(ctx, token, number, at)
	if err != nil {
		return nil, err
	}
	cc := *c
	p.publish(ctx, instachat.Topic{Token: token}, []instachat.Event{{Event: instachat.EventChatDeleted, Revision: c.AppRevision, Chat: &cc}})
	p.publish(ctx, instachat.Topic{Token: token, Chat: number}, []instachat.Event{{Event: instachat.EventChatDeleted, Revision: c.Revision, Chat: &cc}})
	return c, nil
}

// DeleteApplication stores the deletion, then publishes
// application.deleted on its DeletionTopic, which the broker hands to the
// subscribers of every topic of the application: the last event each of its
// streams writes, its own and its chats'. A stream whose publish was lost
// ends at its next idle check, when the store answers that its feed is gone
// (see Stream.Run).
func (p *Publisher) DeleteApplication(ctx context.Context, token string, at time.Time) error {
	if err := p.Store.DeleteApplication(ctx, token, at); err != nil {
		return err
	}
	p.publish(ctx, instachat.DeletionTopic(token), []instachat.Event{{Event: instachat.EventApplicationDeleted}})
	return nil
}

func (p *Publisher) publish(ctx context.Context, topic instachat.Topic, events []instachat.Event) {
	// The batch's creates arrive in commit order already; sorting is
	// cheap insurance that a topic's events go out in revision order.
	slices.SortStableFunc(events, func(a, b instachat.Event) int { return cmp.Compare(a.Revision, b.Revision) })
	// The change is committed: a caller that gave up must not stop its
	// announcement, though a dead broker must not hold anyone long.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	if err := p.Broker.Publish(ctx, topic, events...); err != nil {
		logger := p.Logger
		if logger == nil {
			logger = slog.Default()
		}
		logger.Warn("publishing committed events failed; subscribers fill the gap from the store at the next event",
			"token", instachat.RedactToken(topic.Token), "chat", topic.Chat, "events", len(events), "err", err)
	}
}
