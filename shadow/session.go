package shadow

import (
	"context"
	"strings"
	"sync"
	"time"
)

// maxIncomingBytes bounds a message from the shadow service: AWS IoT
// takes no MQTT payload over 128 KB, and a shadow's state is at most
// 8 KB (a documents message, state and metadata twice over, stays far
// below). Anything larger is not from the service; it is discarded
// unread, before a decoder turns 16 MiB of JSON into half a gigabyte
// of maps.
const maxIncomingBytes = 128 << 10

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
	if !s.base.taken {
		// ApplyPersisted was not called: the Target still holds the
		// config file's values.
		s.base.snapshot(st)
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
				s.log.Warn("shadow: subscribe failed; waiting for the next connection", "topic", t, "err", err)
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
					s.log.Warn("shadow: getting the document after a version jump failed", "err", err)
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
