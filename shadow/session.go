package shadow

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"
)

const (
	// maxInFlight is AWS's limit of shadow requests in flight on one
	// connection; beyond it the service answers 429.
	maxInFlight = 10
	// eventQueue holds deltas and documents while the session is busy
	// with a request; handlers wait (on their own goroutines) when full.
	eventQueue = 16
	// maxConflictRetries bounds re-get-and-retry on 409, so two writers
	// racing forever cannot hold the session.
	maxConflictRetries = 3
	maxSyncBackoff     = time.Minute
	// maxIncomingBytes bounds a message from the shadow service: AWS IoT
	// takes no MQTT payload over 128 KB, and a shadow's state is at most
	// 8 KB (a documents message, state and metadata twice over, stays far
	// below). Anything larger is not from the service; it is discarded
	// unread, before a decoder turns 16 MiB of JSON into half a gigabyte
	// of maps.
	maxIncomingBytes = 128 << 10
	// maxVersionJump is how far a delta's or documents' version may run
	// ahead of the newest version the session knows. While connected the
	// kit sees every update (update/documents), so the service's version
	// is at most a few ahead; a version far beyond is forged or follows
	// lost messages. Taken as is, it would make every real delta after it
	// look stale until the next connect, so the document is got again
	// instead: the service's answer is the truth.
	maxVersionJump = 100
)

// session is the shadow protocol on one MQTT connection.
type session struct {
	s      *Shadow
	conn   Conn
	done   <-chan struct{}
	sem    chan struct{}
	events chan event

	mu      sync.Mutex
	pending map[string]pendingReq // by clientToken
}

type pendingReq struct {
	op string // "get" or "update": the reply must come on its topics
	ch chan reply
}

type reply struct {
	rejected bool
	payload  []byte
}

type event struct {
	delta   bool // else update/documents
	payload []byte
}

// OnConnect runs the shadow on a new connection until ctx ends: subscribe,
// get the whole document (deltas sent while offline are lost; the
// document is not), apply its desired state, report everything with
// connected:true, then apply deltas and report changes (acknowledgements
// at once, the rest at most once per min_report_interval). Register it
// with the publisher, which calls it on its own goroutine after every
// connect.
func (s *Shadow) OnConnect(ctx context.Context, c Conn) {
	if !s.cfg.Enabled {
		return
	}
	ss := &session{
		s:       s,
		conn:    c,
		done:    ctx.Done(),
		sem:     make(chan struct{}, maxInFlight),
		events:  make(chan event, eventQueue),
		pending: map[string]pendingReq{},
	}
	var st State
	if !s.hasBase() {
		st = s.state()
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	if !s.based {
		// ApplyPersisted was not called: the Target still holds the
		// config file's values.
		s.snapshotBaseLocked(st)
	}
	s.cur = ss
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.cur == ss {
			s.cur = nil
		}
		s.mu.Unlock()
	}()

	for _, t := range s.topics.responses() {
		if err := c.Subscribe(ctx, t, ss.handle); err != nil {
			if ctx.Err() == nil {
				s.log.Warn("shadow: subscribe failed; waiting for the next connection", "topic", t, "error", err)
			}
			return
		}
	}
	if !ss.syncUntilDone(ctx) {
		return
	}
	tick := time.NewTicker(s.cfg.MinReportInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-ss.events:
			report, reget := s.handleEvent(ev)
			if reget {
				if err := ss.refresh(ctx); err != nil {
					if ctx.Err() != nil {
						return
					}
					// Nothing of the suspect message was taken, so
					// later deltas still apply.
					s.log.Warn("shadow: getting the document after a version jump failed", "error", err)
				}
				report = true
			}
			if report {
				ss.reportLogged(ctx, false)
			}
		case <-s.kick:
			ss.reportLogged(ctx, false)
		case <-tick.C:
			ss.reportLogged(ctx, false)
		}
	}
}

func (s *Shadow) hasBase() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.based
}

// syncUntilDone retries get-apply-report with backoff until it succeeds
// or the connection ends.
func (ss *session) syncUntilDone(ctx context.Context) bool {
	delay := time.Second
	for {
		err := ss.refresh(ctx)
		if err == nil {
			err = ss.report(ctx, true)
		}
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		ss.s.log.Warn("shadow: sync failed; retrying", "error", err, "in", delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		delay = min(2*delay, maxSyncBackoff)
	}
}

func (ss *session) reportLogged(ctx context.Context, full bool) {
	if err := ss.report(ctx, full); err != nil && ctx.Err() == nil {
		// The difference stays, so the next tick sends it again.
		ss.s.log.Warn("shadow: report failed", "error", err)
	}
}

// getDoc is the part of get/accepted the agent uses.
type getDoc struct {
	State struct {
		Desired  map[string]any `json:"desired"`
		Reported map[string]any `json:"reported"`
	} `json:"state"`
	Version int64 `json:"version"`
}

// refresh gets the whole document and applies its desired state. A thing
// without a shadow (404) has no desired state, so remote settings are
// removed: deleting the shadow returns the kit to its config file.
func (ss *session) refresh(ctx context.Context) error {
	s := ss.s
	b, err := ss.request(ctx, "get", s.topics.get(), map[string]any{})
	var rej *RejectedError
	noShadow := errors.As(err, &rej) && rej.Code == 404
	if err != nil && !noShadow {
		return err
	}
	var doc getDoc
	if !noShadow {
		if err := decodeInto(b, &doc); err != nil {
			return fmt.Errorf("shadow: get/accepted: %w", err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// The document is the truth now, even with a lower version (a shadow
	// deleted and made again starts over).
	s.appliedVersion, s.knownVersion = doc.Version, doc.Version
	s.last = copyObject(doc.State.Reported)
	desired := doc.State.Desired
	if desired == nil {
		desired = map[string]any{}
	}
	s.applyLocked(desired, true)
	return nil
}

// report sends what changed in the reported state (full: everything),
// versioned; on a version conflict it re-gets the document, which may
// bring new desired settings, and tries again.
func (ss *session) report(ctx context.Context, full bool) error {
	s := ss.s
	select {
	case s.reporting <- struct{}{}:
		defer func() { <-s.reporting }()
	case <-ctx.Done():
		return ctx.Err()
	}
	for attempt := 0; ; attempt++ {
		st := s.state()
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			return nil
		}
		doc := s.buildLocked(st)
		var patch map[string]any
		if full {
			patch = fullPatch(s.last, doc)
		} else {
			patch = diff(s.last, doc)
		}
		version := s.knownVersion
		s.mu.Unlock()
		if len(patch) == 0 {
			return nil
		}
		body := map[string]any{"state": map[string]any{"reported": patch}}
		if version > 0 {
			body["version"] = version
		}
		b, err := ss.request(ctx, "update", s.topics.update(), body)
		var rej *RejectedError
		if errors.As(err, &rej) && rej.Code == codeConflict && attempt < maxConflictRetries {
			s.log.Info("shadow: version conflict; getting the document and retrying", "version", version)
			if err := ss.refresh(ctx); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		var acc struct {
			Version int64 `json:"version"`
		}
		_ = json.Unmarshal(b, &acc)
		s.mu.Lock()
		applyPatch(s.last, patch)
		s.knownVersion = max(s.knownVersion, acc.Version)
		s.reportVersion = acc.Version
		s.mu.Unlock()
		return nil
	}
}

// fullPatch is all of cur, plus null for what old has and cur does not.
func fullPatch(old, cur map[string]any) map[string]any {
	out := copyObject(cur)
	addNulls(out, old, cur, true)
	return out
}

func addNulls(out, old, cur map[string]any, top bool) {
	for k, ov := range old {
		nv, ok := cur[k]
		if !ok {
			if !top || ownKeys[k] {
				out[k] = nil
			}
			continue
		}
		om, oIsMap := ov.(map[string]any)
		nm, nIsMap := nv.(map[string]any)
		if oIsMap && nIsMap {
			addNulls(out[k].(map[string]any), om, nm, false)
		}
	}
}

// handleEvent applies a delta or a documents message. report means a
// report should go at once (an acknowledgement, or connected:true again);
// reget that the message's version jumped and the document must be got
// again before anything of it is believed.
func (s *Shadow) handleEvent(ev event) (report, reget bool) {
	if ev.delta {
		return s.handleDelta(ev.payload)
	}
	return s.handleDocuments(ev.payload)
}

// jumpedLocked says whether version is too far ahead to be believed.
func (s *Shadow) jumpedLocked(what string, version int64) bool {
	if version <= s.knownVersion+maxVersionJump {
		return false
	}
	s.log.Warn("shadow: "+what+" version jumped far ahead; getting the document instead of believing it",
		"version", version, "known", s.knownVersion)
	return true
}

func (s *Shadow) handleDelta(payload []byte) (report, reget bool) {
	var d struct {
		Version int64          `json:"version"`
		State   map[string]any `json:"state"`
	}
	if err := decodeInto(payload, &d); err != nil {
		s.log.Warn("shadow: malformed delta ignored", "error", err)
		return false, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.jumpedLocked("delta", d.Version) {
		return false, true
	}
	if d.Version < s.appliedVersion {
		s.log.Info("shadow: stale delta ignored", "version", d.Version, "applied", s.appliedVersion)
		return false, false
	}
	s.appliedVersion = d.Version
	s.knownVersion = max(s.knownVersion, d.Version)
	if d.State == nil {
		d.State = map[string]any{}
	}
	out := s.applyLocked(d.State, false)
	ack := out.changed || out.errsChanged
	if !out.failed && d.Version > s.reportVersion {
		// The service made this delta after our last report, so what it
		// holds as reported differs at these paths, whatever we believe:
		// send them again.
		for _, k := range out.valid {
			forget(s.last, k.reportedPath()...)
			ack = true
		}
	}
	return ack, false
}

func (s *Shadow) handleDocuments(payload []byte) (report, reget bool) {
	type side struct {
		State struct {
			Desired  map[string]any `json:"desired"`
			Reported struct {
				Connected any `json:"connected"`
			} `json:"reported"`
		} `json:"state"`
		Version int64 `json:"version"`
	}
	var d struct {
		Previous side `json:"previous"`
		Current  side `json:"current"`
	}
	if err := decodeInto(payload, &d); err != nil {
		s.log.Warn("shadow: malformed documents message ignored", "error", err)
		return false, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.jumpedLocked("documents", d.Current.Version) {
		return false, true
	}
	// Only the newest document says what the service holds now: messages
	// are not ordered, and an older one may still say connected:false.
	if d.Current.Version >= s.knownVersion && d.Current.State.Reported.Connected != true && !s.closing {
		// This connection is up, yet the shadow says otherwise: a late
		// status message or Last Will of an earlier connection (after a
		// takeover) went through the status rule after our
		// connected:true. Say it again.
		s.log.Info("shadow: the shadow says connected is not true while this connection is up (a late Will or status message); reporting connected:true",
			"connected", d.Current.State.Reported.Connected, "version", d.Current.Version)
		forget(s.last, "connected")
		report = true
	}
	if d.Current.Version < s.appliedVersion {
		return report, false
	}
	s.knownVersion = max(s.knownVersion, d.Current.Version)
	// Documents follow every update, our reports included; only a change
	// of desired matters here. It is how a removed desired setting (null)
	// is seen at once: AWS sends no delta for a removal.
	if reflect.DeepEqual(d.Previous.State.Desired, d.Current.State.Desired) {
		return report, false
	}
	s.appliedVersion = d.Current.Version
	desired := d.Current.State.Desired
	if desired == nil {
		desired = map[string]any{}
	}
	out := s.applyLocked(desired, true)
	return report || out.changed || out.errsChanged, false
}

// reportedPath is where a setting is echoed in reported.
func (k key) reportedPath() []string {
	if k == batchKey {
		return []string{"mqtt", "batch", "max_readings"}
	}
	return []string{"sensors", k.sensor, k.field}
}

// handle runs on the Conn's handler goroutine: replies go straight to
// their request, deltas and documents to the session loop.
func (ss *session) handle(topic string, payload []byte) {
	if len(payload) > maxIncomingBytes {
		// Checked before any decoding: the cost of a message must not
		// be its sender's choice. A reply dropped here times out.
		ss.s.log.Error("shadow: message larger than the service ever sends; discarded unread",
			"topic", topic, "bytes", len(payload), "limit", maxIncomingBytes)
		return
	}
	switch {
	case strings.HasSuffix(topic, "/accepted"):
		ss.deliver(topic, reply{payload: payload})
	case strings.HasSuffix(topic, "/rejected"):
		ss.deliver(topic, reply{rejected: true, payload: payload})
	case strings.HasSuffix(topic, "/update/delta"):
		ss.enqueue(event{delta: true, payload: payload})
	case strings.HasSuffix(topic, "/update/documents"):
		ss.enqueue(event{payload: payload})
	}
}

func (ss *session) enqueue(ev event) {
	select {
	case ss.events <- ev:
	case <-ss.done:
	}
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
		return nil, ErrClosed
	}
	defer func() { <-ss.sem }()
	tok := ss.s.newToken()
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
		return nil, ErrClosed
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
