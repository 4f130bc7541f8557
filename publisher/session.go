package publisher

import (
	"context"
	"fmt"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Session is one connection as OnConnect hooks see it (the shadow uses it).
// It is valid until its context is cancelled; after that its methods return
// ErrConnectionLost.
type Session struct {
	p   *Publisher
	c   *conn
	ctx context.Context // cancelled when the connection ends

	// subs stops a subscription's handler goroutine on Unsubscribe
	// (unsubscribe.go); nil until the first Subscribe.
	subMu sync.Mutex
	subs  map[string]context.CancelFunc
}

// Context is cancelled when the session's connection ends.
func (s *Session) Context() context.Context { return s.ctx }

// Publish sends payload on topic with QoS 1 and waits for the PUBACK, ctx,
// or the end of the connection. It counts against max_publish_rate. A
// PUBACK overdue by ack_timeout ends the connection, since paho would not
// resend before a reconnect.
func (s *Session) Publish(ctx context.Context, topic string, payload []byte, retained bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	if err := s.p.lim.wait(ctx); err != nil {
		return s.ctxErr(err)
	}
	if s.c.isLost() {
		return ErrConnectionLost
	}
	s.c.notePublish(topic)
	// paho's Publish can block for its write timeout when the connection
	// dies under it; call it aside so ctx and the ack timeout still rule.
	toks := make(chan mqtt.Token, 1)
	go func() { toks <- s.c.client.Publish(topic, 1, retained, payload) }()
	t := time.NewTimer(s.p.cfg.ackTimeout())
	defer t.Stop()
	select {
	case tok := <-toks:
		return s.wait(ctx, tok)
	case <-t.C:
		s.c.kill(errAckTimeout)
		return fmt.Errorf("%w: %v", ErrConnectionLost, errAckTimeout)
	case <-ctx.Done():
		return s.ctxErr(ctx.Err())
	}
}

// Subscribe subscribes to topic with QoS 1 and waits for the SUBACK.
// handler is called for each message, one at a time, on a goroutine of the
// session's own, so it may block or publish without stalling paho; it stops
// when the connection ends (clean sessions: subscribe again in OnConnect).
func (s *Session) Subscribe(ctx context.Context, topic string, handler func(topic string, payload []byte)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	if s.c.isLost() {
		return ErrConnectionLost
	}
	q := newInbox(s.p, topic)
	qctx := s.track(topic)
	go q.run(qctx, handler)
	tok := s.c.client.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) { q.push(m.Topic(), m.Payload()) })
	if err := s.wait(ctx, tok); err != nil {
		return err
	}
	if st, ok := tok.(*mqtt.SubscribeToken); ok {
		if code, ok := st.Result()[topic]; ok && code >= 0x80 {
			return fmt.Errorf("%w: %s", ErrSubscribeRefused, topic)
		}
	}
	return nil
}

// wait waits for tok without ever calling the unbounded token.Wait (paho
// #613); an overdue ack ends the connection.
func (s *Session) wait(ctx context.Context, tok mqtt.Token) error {
	t := time.NewTimer(s.p.cfg.ackTimeout())
	defer t.Stop()
	select {
	case <-tok.Done():
		// Every error paho puts on a token (not connected, lost before
		// completion, write timeout, no packet ids) means this connection
		// can no longer deliver it.
		if err := tok.Error(); err != nil {
			return fmt.Errorf("%w: %v", ErrConnectionLost, err)
		}
		return nil
	case <-t.C:
		s.c.kill(errAckTimeout)
		return fmt.Errorf("%w: %v", ErrConnectionLost, errAckTimeout)
	case <-ctx.Done():
		return s.ctxErr(ctx.Err())
	}
}

func (s *Session) ctxErr(err error) error {
	if s.ctx.Err() != nil {
		return ErrConnectionLost
	}
	return err
}

// inboxMax bounds messages waiting for a slow handler; beyond it the oldest
// are dropped (and logged) rather than growing without limit.
const inboxMax = 1024

// inbox hands messages from paho's callback to the handler's goroutine
// without ever blocking paho.
type inbox struct {
	p     *Publisher
	topic string
	mu    sync.Mutex
	msgs  []inboxMsg
	wake  chan struct{}
}

type inboxMsg struct {
	topic   string
	payload []byte
}

func newInbox(p *Publisher, topic string) *inbox {
	return &inbox{p: p, topic: topic, wake: make(chan struct{}, 1)}
}

func (q *inbox) push(topic string, payload []byte) {
	q.mu.Lock()
	if len(q.msgs) >= inboxMax {
		q.msgs = q.msgs[1:]
		q.p.log.Warn("subscription handler too slow: dropped the oldest waiting message", "filter", q.topic)
	}
	q.msgs = append(q.msgs, inboxMsg{topic, payload})
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *inbox) run(ctx context.Context, handler func(string, []byte)) {
	for {
		q.mu.Lock()
		msgs := q.msgs
		q.msgs = nil
		q.mu.Unlock()
		for _, m := range msgs {
			if ctx.Err() != nil {
				return
			}
			handler(m.topic, m.payload)
		}
		select {
		case <-ctx.Done():
			return
		case <-q.wake:
		}
	}
}
