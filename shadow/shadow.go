package shadow

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kitd-dev/kitd/telemetry"
)

// Target is what desired state changes: the caller adapts the scheduler
// and the publisher to it. Its methods are called one at a time and must
// not call back into the Shadow.
type Target interface {
	SetInterval(sensor string, d time.Duration) error
	SetEnabled(sensor string, on bool) error
	SetBatchMaxReadings(n int) error
}

// Shadow keeps the AWS IoT device shadow in step with the agent: it
// reports the agent's state, applies desired settings to the Target and
// persists them. All methods are safe for concurrent use.
type Shadow struct {
	cfg     Config
	device  string
	topics  topics
	target  Target
	state   func() State
	log     *slog.Logger
	tokenID string        // random, so tokens differ across restarts
	tokens  atomic.Uint64 // counter within tokenID
	// reqTimeout bounds each shadow request; AWS answers in well under a
	// second, so a missing answer means a lost message or a dead link.
	reqTimeout time.Duration
	// kick asks the connected session to report now (after a reload).
	kick chan struct{}
	// reporting holds one token: one report in flight, so a report built
	// before ReportDisconnected cannot land after its connected:false. A
	// channel, so a shutdown waiting for it still obeys its ctx.
	reporting chan struct{}

	mu sync.Mutex
	// The config file's values: what a removed desired setting returns
	// to. Persisted desired settings are applied over them.
	names        map[string]bool
	based        bool // the per-sensor base values were taken
	baseInterval map[string]time.Duration
	baseEnabled  map[string]bool
	baseBatch    int
	// applied are the desired settings in force (persisted); errs the
	// errors entries of reported.
	applied map[key]setting
	errs    map[string]string
	// appliedVersion is the shadow version of the newest desired state
	// applied: older deltas are stale. knownVersion is the newest version
	// seen, sent with updates so a concurrent writer causes a 409.
	// reportVersion is the version our last report created.
	appliedVersion, knownVersion, reportVersion int64
	// last is the reported state as the service holds it, as far as we
	// know; reports send the difference from it.
	last      map[string]any
	oversized bool // the size warning was logged
	cur       *session
	closing   bool
}

// New makes a Shadow for device. sensors are the configured sensor names
// (desired settings for any other name are errors); batchMaxReadings is
// the config file's mqtt.batch.max_readings. state must return the live
// state; when ApplyPersisted and Reapply run it must show the config
// file's intervals and enabled flags, which become the values a removed
// desired setting returns to.
func New(cfg Config, device string, sensors []string, batchMaxReadings int, target Target, state func() State, log *slog.Logger) (*Shadow, error) {
	var errs []error
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := telemetry.CheckDevice(device); err != nil {
		errs = append(errs, fmt.Errorf("device.id: %w", err))
	}
	if target == nil {
		errs = append(errs, errors.New("shadow: nil target"))
	}
	if state == nil {
		errs = append(errs, errors.New("shadow: nil state func"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var id [4]byte
	_, _ = rand.Read(id[:])
	s := &Shadow{
		cfg:          cfg,
		device:       device,
		topics:       newTopics(device, cfg.Name),
		target:       target,
		state:        state,
		log:          log.With("shadow", cfg.Name),
		tokenID:      hex.EncodeToString(id[:]),
		reqTimeout:   10 * time.Second,
		kick:         make(chan struct{}, 1),
		reporting:    make(chan struct{}, 1),
		baseBatch:    batchMaxReadings,
		baseInterval: map[string]time.Duration{},
		baseEnabled:  map[string]bool{},
		applied:      map[key]setting{},
		errs:         map[string]string{},
		last:         map[string]any{},
	}
	s.names = nameSet(sensors)
	return s, nil
}

func nameSet(names []string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// snapshotBaseLocked takes the config file's per-sensor values from the
// live state, which shows them before any desired setting is applied.
func (s *Shadow) snapshotBaseLocked(st State) {
	s.based = true
	s.baseInterval = map[string]time.Duration{}
	s.baseEnabled = map[string]bool{}
	for _, sn := range st.Sensors {
		if s.names[sn.Name] {
			s.baseInterval[sn.Name] = sn.Interval
			s.baseEnabled[sn.Name] = sn.Enabled
		}
	}
}

// ApplyPersisted loads the state file and applies its desired settings
// over the config file; call it at start, before connecting, so a reboot
// while offline keeps the remote configuration. A missing file is no
// settings. A corrupt file is logged, set aside as <state_file>.bad and
// the agent starts from its config file (nil is returned). Settings that
// no longer fit the config file (a sensor removed) are dropped and shown
// in reported errors; the others are applied. The error reports what
// could not be read or applied.
func (s *Shadow) ApplyPersisted() error {
	if !s.cfg.Enabled {
		return nil
	}
	st := s.state()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snapshotBaseLocked(st)
	doc, err := s.load()
	if errors.Is(err, ErrCorruptState) {
		s.log.Error("shadow: starting from the config file", "error", err)
		return nil
	}
	if err != nil || doc == nil {
		return err
	}
	return s.reapplyLocked(doc)
}

// Reapply sets a new base after the config file was re-read (SIGHUP) and
// applies the persisted desired settings over it again. The Target must
// already hold the new file's values.
func (s *Shadow) Reapply(sensors []string, batchMaxReadings int) error {
	if !s.cfg.Enabled {
		return nil
	}
	st := s.state()
	s.mu.Lock()
	s.names = nameSet(sensors)
	s.baseBatch = batchMaxReadings
	s.snapshotBaseLocked(st)
	doc := s.desiredDocLocked()
	err := s.reapplyLocked(doc)
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
	return err
}

// reapplyLocked applies doc over a Target that holds the config file's
// values. Unlike a remote document it applies what it can: these settings
// were valid once, and one sensor removed from the file must not discard
// the rest.
func (s *Shadow) reapplyLocked(doc map[string]any) error {
	prev := s.applied
	p := parseDesired(doc, s.names)
	if len(p.errs) > 0 {
		s.log.Warn("shadow: persisted desired settings no longer fit the config file; dropped", "errors", errorsValue(p.errs))
		s.setErrorsLocked(p.errs)
	}
	s.applied = map[key]setting{}
	var errs []error
	for _, k := range sortedSettingKeys(p.sets) {
		v := p.sets[k]
		if err := s.call(k, v); err != nil {
			errs = append(errs, fmt.Errorf("shadow: %s: %w", k.path(), err))
			s.setErrorsLocked(map[string]string{k.path(): "not applied: " + err.Error()})
			continue
		}
		s.applied[k] = v
	}
	if len(s.applied) > 0 {
		s.log.Info("shadow: persisted desired settings applied", "settings", settingsValue(s.applied))
	}
	if !sameSettings(prev, s.applied) || len(p.errs) > 0 || len(errs) > 0 {
		if err := s.saveLocked(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func sortedSettingKeys(m map[key]setting) []key {
	ks := make([]key, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i].path() < ks[j].path() })
	return ks
}

// Reported returns the last reported document as the service holds it.
func (s *Shadow) Reported() map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return copyObject(s.last)
}

// ReportDisconnected reports connected:false through the current
// connection, if any, for a clean shutdown (a Will is not sent then).
// Nothing is reported afterwards, not even on a new connection.
func (s *Shadow) ReportDisconnected(ctx context.Context) error {
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
		return fmt.Errorf("shadow: report disconnected: %w", ctx.Err())
	}
	s.mu.Lock()
	ss := s.cur
	s.mu.Unlock()
	if ss == nil {
		return nil
	}
	patch := map[string]any{"connected": false}
	if _, err := ss.request(ctx, "update", s.topics.update(), map[string]any{"state": map[string]any{"reported": patch}}); err != nil {
		return fmt.Errorf("shadow: report disconnected: %w", err)
	}
	s.mu.Lock()
	applyPatch(s.last, patch)
	s.mu.Unlock()
	return nil
}

func (s *Shadow) newToken() string {
	return s.tokenID + "-" + fmt.Sprint(s.tokens.Add(1))
}
