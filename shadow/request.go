package shadow

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
)

// maxInFlight is AWS's limit of shadow requests in flight on one
// connection; beyond it the service answers 429.
const maxInFlight = 10

// tokenSource makes clientTokens: a random prefix, so tokens differ across
// restarts, and a counter within it.
type tokenSource struct {
	id string
	n  atomic.Uint64
}

func newTokenID() string {
	var id [4]byte
	_, _ = rand.Read(id[:])
	return hex.EncodeToString(id[:])
}

func (t *tokenSource) next() string {
	return t.id + "-" + fmt.Sprint(t.n.Add(1))
}

// pendingReq is a request waiting for its reply.
type pendingReq struct {
	op string // "get" or "update": the reply must come on its topics
	ch chan reply
}

type reply struct {
	rejected bool
	payload  []byte
}

// deliver matches a reply to its request by clientToken. Replies to other
// clients' requests (a cloud app updating desired) carry other tokens, or
// none, and are dropped.
func (ss *session) deliver(topic string, r reply) {
	var t struct {
		ClientToken string `json:"clientToken"`
	}
	if json.Unmarshal(r.payload, &t) != nil || t.ClientToken == "" {
		return
	}
	ss.mu.Lock()
	p, ok := ss.pending[t.ClientToken]
	ss.mu.Unlock()
	if !ok || !strings.Contains(topic, "/"+p.op+"/") {
		return
	}
	select {
	case p.ch <- r:
	default: // a duplicate (QoS 1 redelivery): the first one counts
	}
}

// request publishes one shadow request and waits for its reply, at most
// maxInFlight at once and each at most reqTimeout.
func (ss *session) request(ctx context.Context, op, topic string, body map[string]any) ([]byte, error) {
	select {
	case ss.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-ss.done:
		return nil, ErrConnectionLost
	}
	defer func() { <-ss.sem }()
	tok := ss.s.tokens.next()
	body["clientToken"] = tok
	payload, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("shadow: %s: %w", op, err)
	}
	ch := make(chan reply, 1)
	ss.mu.Lock()
	ss.pending[tok] = pendingReq{op: op, ch: ch}
	ss.mu.Unlock()
	defer func() {
		ss.mu.Lock()
		delete(ss.pending, tok)
		ss.mu.Unlock()
	}()
	rctx, cancel := context.WithTimeout(ctx, ss.s.reqTimeout)
	defer cancel()
	if err := ss.conn.Publish(rctx, topic, payload, false); err != nil {
		if ctx.Err() == nil && rctx.Err() != nil {
			return nil, fmt.Errorf("%w: %s publish after %s", ErrTimeout, op, ss.s.reqTimeout)
		}
		return nil, fmt.Errorf("shadow: %s: %w", op, err)
	}
	select {
	case r := <-ch:
		if !r.rejected {
			return r.payload, nil
		}
		var e struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		}
		if json.Unmarshal(r.payload, &e) != nil || e.Code == 0 {
			return nil, &RejectedError{Code: 0, Message: fmt.Sprintf("unparsed rejection %q", r.payload)}
		}
		return nil, &RejectedError{Code: e.Code, Message: e.Message}
	case <-ss.done:
		return nil, ErrConnectionLost
	case <-rctx.Done():
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %s after %s", ErrTimeout, op, ss.s.reqTimeout)
	}
}

// decodeInto parses a message from the service, numbers kept as written.
func decodeInto(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}
