package shadow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

const (
	// maxConflictRetries bounds re-get-and-retry on 409, so two writers
	// racing forever cannot hold the session.
	maxConflictRetries = 3
	maxSyncBackoff     = time.Minute
)

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
