// Package search is the message search the API serves: an
// instachat.Searcher composed of a SearchEngine, which finds the numbers of
// the matching messages in rank order, and the Store, which holds the rows.
// It is Mattermost's searchlayer shape: the engine never hands out a body of
// its own, so an index that lags behind an edit can delay what a search
// finds, never show an old text; and the store's own search is the engine
// when no search engine is configured.
package search

import (
	"context"

	"github.com/instachat/instachat"
)

// Service implements instachat.Searcher.
type Service struct {
	Store  instachat.Store
	Engine instachat.SearchEngine
}

var _ instachat.Searcher = (*Service)(nil)

// New returns the search of store through engine.
func New(store instachat.Store, engine instachat.SearchEngine) *Service {
	return &Service{Store: store, Engine: engine}
}

// SearchMessages implements instachat.Searcher: it checks that the chat is
// stored (an engine answers an unknown chat with no hits, and the client
// deserves to learn it does not exist), asks the engine for the page of
// hits, and loads them from the store in one query, in the engine's order.
// A hit the store does not hold — a message deleted since it was indexed —
// is left out, so a page may come back shorter than the engine's.
func (s *Service) SearchMessages(ctx context.Context, q instachat.SearchQuery) ([]*instachat.Message, error) {
	if _, err := s.Store.FindChat(ctx, q.Token, q.Chat); err != nil {
		return nil, err
	}
	hits, err := s.Engine.SearchMessageNumbers(ctx, q)
	if err != nil {
		return nil, err
	}
	if len(hits) == 0 {
		return []*instachat.Message{}, nil
	}
	numbers := make([]int64, len(hits))
	for i, h := range hits {
		numbers[i] = h.Number
	}
	stored, err := s.Store.FindMessages(ctx, q.Token, q.Chat, numbers)
	if err != nil {
		return nil, err
	}
	byNumber := make(map[int64]*instachat.Message, len(stored))
	for _, m := range stored {
		byNumber[m.Number] = m
	}
	msgs := make([]*instachat.Message, 0, len(hits))
	for _, h := range hits {
		if m, ok := byNumber[h.Number]; ok {
			msgs = append(msgs, m)
			delete(byNumber, h.Number) // an engine repeating a hit shows it once
		}
	}
	return msgs, nil
}
