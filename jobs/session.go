package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"
)

// maxIncomingBytes bounds a message from the service: AWS IoT takes no
// MQTT payload over 128 KB, and a job document is at most 32 KB. Anything
// larger is not from the service and is discarded unread.
const maxIncomingBytes = 128 << 10

// session is the client on one connection.
type session struct {
	c      *Client
	conn   Conn
	ctx    context.Context // the connection's
	notify chan struct{}

	mu      sync.Mutex
	pending map[string]chan reply // by clientToken
	rejects map[string]bool       // tokens answered on /rejected
}

func newSession(ctx context.Context, c *Client, conn Conn) *session {
	return &session{
		c:       c,
		conn:    conn,
		ctx:     ctx,
		notify:  make(chan struct{}, 1),
		pending: map[string]chan reply{},
		rejects: map[string]bool{},
	}
}

// handle runs on the Conn's handler goroutines.
func (ss *session) handle(topic string, payload []byte) {
	if len(payload) > maxIncomingBytes {
		ss.c.log.Error("jobs: message larger than the service ever sends; discarded unread",
			"topic", topic, "bytes", len(payload), "limit", maxIncomingBytes)
		return
	}
	if strings.HasSuffix(topic, "/notify-next") {
		select {
		case ss.notify <- struct{}{}:
		default:
		}
		return
	}
	var r reply
	if err := json.Unmarshal(payload, &r); err != nil {
		ss.c.log.Warn("jobs: malformed reply ignored", "topic", topic, "err", err)
		return
	}
	rejected := strings.HasSuffix(topic, "/rejected")
	ss.mu.Lock()
	ch := ss.pending[r.ClientToken]
	delete(ss.pending, r.ClientToken)
	if ch != nil && rejected {
		ss.rejects[r.ClientToken] = true
	}
	ss.mu.Unlock()
	if ch == nil {
		return // another client's, or an answer after its request timed out
	}
	ch <- r // buffered 1, and removed from pending: never blocks
}

// request publishes body (with a fresh clientToken) on topic and waits
// for the answer on topic/accepted or topic/rejected.
func (ss *session) request(ctx context.Context, topic string, body map[string]any) (reply, error) {
	tok := ss.c.token()
	body["clientToken"] = tok
	payload, err := json.Marshal(body)
	if err != nil {
		return reply{}, err
	}
	ch := make(chan reply, 1)
	ss.mu.Lock()
	ss.pending[tok] = ch
	ss.mu.Unlock()
	defer func() {
		ss.mu.Lock()
		delete(ss.pending, tok)
		delete(ss.rejects, tok)
		ss.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(ctx, ss.c.reqTimeout)
	defer cancel()
	if err := ss.conn.Publish(ctx, topic, payload, false); err != nil {
		return reply{}, fmt.Errorf("jobs: %s: %w", topic, err)
	}
	select {
	case r := <-ch:
		ss.mu.Lock()
		rej := ss.rejects[tok]
		ss.mu.Unlock()
		if rej {
			return r, &RejectedError{Code: r.Code, Message: r.Message, State: r.ExecutionState}
		}
		return r, nil
	case <-ctx.Done():
		if ctx.Err() == context.DeadlineExceeded {
			return reply{}, fmt.Errorf("%w: %s within %s", ErrTimeout, topic, ss.c.reqTimeout)
		}
		return reply{}, ctx.Err()
	}
}

// getNext asks for the next pending execution ($next: the first
// IN_PROGRESS one, else the first QUEUED); nil when there is none.
func (ss *session) getNext(ctx context.Context) (*JobExecution, error) {
	r, err := ss.request(ctx, ss.c.topics.getNext(), map[string]any{"includeJobDocument": true})
	if err != nil {
		return nil, err
	}
	return r.Execution, nil
}

// getJob gets one execution (<jobId>/get).
func (ss *session) getJob(ctx context.Context, jobID string, number int64) (*JobExecution, error) {
	r, err := ss.request(ctx, ss.c.topics.get(jobID), map[string]any{"executionNumber": number, "includeJobDocument": false})
	if err != nil {
		return nil, err
	}
	if r.Execution == nil {
		return nil, fmt.Errorf("jobs: %s/get: no execution in the answer", jobID)
	}
	return r.Execution, nil
}

func (ss *session) subscribeJob(ctx context.Context, jobID string) error {
	for _, t := range ss.c.topics.perJob(jobID) {
		if err := ss.conn.Subscribe(ctx, t, ss.handle); err != nil {
			return err
		}
	}
	return nil
}

// unsubscribeJob keeps the connection's subscriptions few (AWS allows 50
// per connection); on a dead connection there is nothing to undo.
func (ss *session) unsubscribeJob(jobID string) {
	ctx, cancel := context.WithTimeout(ss.ctx, ss.c.reqTimeout)
	defer cancel()
	for _, t := range ss.c.topics.perJob(jobID) {
		if err := ss.conn.Unsubscribe(ctx, t); err != nil {
			return
		}
	}
}

// drainNotify forgets notifications already pending: a get follows.
func (ss *session) drainNotify() {
	select {
	case <-ss.notify:
	default:
	}
}

// waitNotify waits for notify-next, for d (0: no limit) or the end of
// ctx; false when ctx ended.
func (ss *session) waitNotify(ctx context.Context, d time.Duration) bool {
	var t <-chan time.Time
	if d > 0 {
		tm := time.NewTimer(d)
		defer tm.Stop()
		t = tm.C
	}
	select {
	case <-ctx.Done():
		return false
	case <-ss.notify:
	case <-t:
	}
	return true
}
