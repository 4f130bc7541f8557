package shadow

import (
	"context"
	"errors"
	"fmt"
	"time"
)

const maxSyncBackoff = time.Minute

// versions are the shadow document versions the agent goes by. applied
// is the version of the newest desired state applied: older deltas are
// stale. known is the newest version seen, sent with updates so a
// concurrent writer causes a 409. report is the version our last report
// created.
type versions struct {
	applied, known, report int64
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
		ss.s.log.Warn("shadow: sync failed; retrying", "err", err, "in", delay)
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
	s.ver.applied, s.ver.known = doc.Version, doc.Version
	s.last = copyObject(doc.State.Reported)
	desired := doc.State.Desired
	if desired == nil {
		desired = map[string]any{}
	}
	s.applyLocked(desired, true)
	return nil
}
