package shadow

import "reflect"

const (
	// eventQueue holds deltas and documents while the session is busy
	// with a request; handlers wait (on their own goroutines) when full.
	eventQueue = 16
	// maxVersionJump is how far a delta's or documents' version may run
	// ahead of the newest version the session knows. While connected the
	// kit sees every update (update/documents), so the service's version
	// is at most a few ahead; a version far beyond is forged or follows
	// lost messages. Taken as is, it would make every real delta after it
	// look stale until the next connect, so the document is got again
	// instead: the service's answer is the truth.
	maxVersionJump = 100
)

// event is a delta or a documents message waiting for the session loop.
type event struct {
	delta   bool // else update/documents
	payload []byte
}

// enqueue waits while the queue is full rather than drop a delta, and
// gives up when the connection ends.
func (ss *session) enqueue(ev event) {
	select {
	case ss.events <- ev:
	case <-ss.done:
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
	if version <= s.ver.known+maxVersionJump {
		return false
	}
	s.log.Warn("shadow: "+what+" version jumped far ahead; getting the document instead of believing it",
		"version", version, "known", s.ver.known)
	return true
}

func (s *Shadow) handleDelta(payload []byte) (report, reget bool) {
	var d struct {
		Version int64          `json:"version"`
		State   map[string]any `json:"state"`
	}
	if err := decodeInto(payload, &d); err != nil {
		s.log.Warn("shadow: malformed delta ignored", "err", err)
		return false, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.jumpedLocked("delta", d.Version) {
		return false, true
	}
	if d.Version < s.ver.applied {
		s.log.Info("shadow: stale delta ignored", "version", d.Version, "applied", s.ver.applied)
		return false, false
	}
	s.ver.applied = d.Version
	s.ver.known = max(s.ver.known, d.Version)
	if d.State == nil {
		d.State = map[string]any{}
	}
	out := s.applyLocked(d.State, false)
	ack := out.changed || out.errsChanged
	if !out.failed && d.Version > s.ver.report {
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
		s.log.Warn("shadow: malformed documents message ignored", "err", err)
		return false, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.jumpedLocked("documents", d.Current.Version) {
		return false, true
	}
	// Only the newest document says what the service holds now: messages
	// are not ordered, and an older one may still say connected:false.
	if d.Current.Version >= s.ver.known && d.Current.State.Reported.Connected != true && !s.closing {
		// This connection is up, yet the shadow says otherwise: a late
		// status message or Last Will of an earlier connection (after a
		// takeover) went through the status rule after our
		// connected:true. Say it again.
		s.log.Info("shadow: the shadow says connected is not true while this connection is up (a late Will or status message); reporting connected:true",
			"connected", d.Current.State.Reported.Connected, "version", d.Current.Version)
		forget(s.last, "connected")
		report = true
	}
	if d.Current.Version < s.ver.applied {
		return report, false
	}
	s.ver.known = max(s.ver.known, d.Current.Version)
	// Documents follow every update, our reports included; only a change
	// of desired matters here. It is how a removed desired setting (null)
	// is seen at once: AWS sends no delta for a removal.
	if reflect.DeepEqual(d.Previous.State.Desired, d.Current.State.Desired) {
		return report, false
	}
	s.ver.applied = d.Current.Version
	desired := d.Current.State.Desired
	if desired == nil {
		desired = map[string]any{}
	}
	out := s.applyLocked(desired, true)
	return report || out.changed || out.errsChanged, false
}
