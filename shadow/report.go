package shadow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// maxConflictRetries bounds re-get-and-retry on 409, so two writers
// racing forever cannot hold the session.
const maxConflictRetries = 3

// Reported returns the last reported document as the service holds it.
func (s *Shadow) Reported() map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return copyObject(s.last)
}

// Shutdown is the shadow's goodbye for a clean stop (a Will is not sent
// then): it reports connected:false through the current connection, if
// any, bounded by ctx (ctx's error, wrapped, if the deadline wins). From
// its start nothing else is reported, not even on a new connection, even
// when connected:false could not be sent. Calling it again is harmless:
// it reports connected:false again if still connected. Call it before
// the publisher stops, so there is a connection to say it on.
func (s *Shadow) Shutdown(ctx context.Context) error {
	// Closing before anything can fail: even when connected:false cannot
	// be sent, the status message that follows must not make a stopping
	// agent report connected:true again.
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	select {
	case s.reporting <- struct{}{}:
		defer func() { <-s.reporting }()
	case <-ctx.Done():
		return fmt.Errorf("shadow: shutdown: %w", ctx.Err())
	}
	s.mu.Lock()
	ss := s.cur
	s.mu.Unlock()
	if ss == nil {
		return nil
	}
	patch := map[string]any{"connected": false}
	if _, err := ss.request(ctx, "update", s.topics.update(), map[string]any{"state": map[string]any{"reported": patch}}); err != nil {
		return fmt.Errorf("shadow: shutdown: %w", err)
	}
	s.mu.Lock()
	applyPatch(s.last, patch)
	s.mu.Unlock()
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
		version := s.ver.known
		// Volatile figures alone wait for the heartbeat; any real change
		// takes them along.
		quiet := !full && !hasRealChange(patch) && s.now().Sub(s.volatileAt) < s.cfg.Heartbeat
		s.mu.Unlock()
		if len(patch) == 0 || quiet {
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
		s.ver.known = max(s.ver.known, acc.Version)
		s.ver.report = acc.Version
		s.volatileAt = s.now()
		s.mu.Unlock()
		return nil
	}
}

func (ss *session) reportLogged(ctx context.Context, full bool) {
	if err := ss.report(ctx, full); err != nil && ctx.Err() == nil {
		// The difference stays, so the next tick sends it again.
		ss.s.log.Warn("shadow: report failed", "err", err)
	}
}

// volatile are the reported leaves that change with every reading: by
// themselves they are not worth a shadow update (AWS bills each one), so
// they go with a real change or at the heartbeat.
var volatile = map[string]map[string]bool{
	"buffer":  {"pending": true, "bytes": true},
	"sensors": {"last_reading_ts": true}, // under each sensor
}

// hasRealChange reports whether patch changes anything but volatile
// figures: the connection, config, a sensor's health or settings, errors,
// losses, alerts.
func hasRealChange(patch map[string]any) bool {
	for k, v := range patch {
		m, isMap := v.(map[string]any)
		switch {
		case k == "buffer" && isMap:
			for f := range m {
				if !volatile["buffer"][f] {
					return true
				}
			}
		case k == "sensors" && isMap:
			for _, sv := range m {
				sm, ok := sv.(map[string]any)
				if !ok {
					return true // a sensor added whole or removed
				}
				for f := range sm {
					if !volatile["sensors"][f] {
						return true
					}
				}
			}
		default:
			return true
		}
	}
	return false
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
