package publisher

import (
	"context"
	"fmt"
)

// Unsubscribe ends a subscription made with Subscribe on this session and
// stops its handler goroutine. Clients that subscribe per request (the
// jobs client's per-job reply topics) need it: AWS IoT allows 50
// subscriptions per connection, and a long-lived connection would
// otherwise collect one pair per job until the broker refuses more.
func (s *Session) Unsubscribe(ctx context.Context, topic string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	if s.c.isLost() {
		return ErrConnectionLost
	}
	s.subMu.Lock()
	if c := s.subs[topic]; c != nil {
		c()
		delete(s.subs, topic)
	}
	s.subMu.Unlock()
	if err := s.wait(ctx, s.c.client.Unsubscribe(topic)); err != nil {
		return fmt.Errorf("unsubscribe %s: %w", topic, err)
	}
	return nil
}

// track gives a subscription's handler goroutine a context that ends with
// the connection or with Unsubscribe.
func (s *Session) track(topic string) context.Context {
	ctx, cancel := context.WithCancel(s.ctx)
	s.subMu.Lock()
	defer s.subMu.Unlock()
	if s.subs == nil {
		s.subs = map[string]context.CancelFunc{}
	}
	if old := s.subs[topic]; old != nil {
		old() // subscribed again: paho keeps one handler per filter
	}
	s.subs[topic] = cancel
	return ctx
}
