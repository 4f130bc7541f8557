package alerts

import (
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/kitd-dev/kitd/telemetry"
)

// Evaluator runs the rules over readings and keeps each rule's state. It
// is safe for concurrent use: the scheduler hands readings of different
// sensors from different goroutines.
type Evaluator struct {
	path string
	log  *slog.Logger

	mu    sync.Mutex // guards everything below, and orders emits
	rules []Rule
	state map[string]*ruleState // by rule name
}

// ruleState is one rule's state. The exported fields are persisted.
type ruleState struct {
	Firing bool `json:"firing"`
	// Since is when it started firing (wall clock, for the shadow).
	Since time.Time `json:"since"`
	// Value is the value that made it fire.
	Value float64 `json:"value"`
	// Sent is the wall time of the last "firing" message.
	Sent time.Time `json:"sent"`
	// Seq is the buffer seq of the rule's last alert record: after a
	// crash, a record above it in the buffer is newer than this state
	// (Restore).
	Seq uint64 `json:"seq"`

	// Not persisted: the boot-time clock of the pending condition's start
	// and of the last firing message (sentKnown false after a restart
	// until the first reading sets it from Sent).
	pending   bool
	pendingAt time.Duration
	sentAt    time.Duration
	sentKnown bool
}

// Active is a firing alert, as the shadow reports it.
type Active struct {
	Name, Sensor, Quantity string
	Threshold, Value       float64
	Since                  time.Time
}

// New makes an evaluator for rules (already validated), its state loaded
// from path ("" keeps state in memory only). A state file that cannot be
// used is an error wrapping ErrState, returned beside a working evaluator
// that starts with nothing firing.
func New(rules Config, path string, log *slog.Logger) (*Evaluator, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Evaluator{path: path, log: log.With("component", "alerts"), state: map[string]*ruleState{}}
	var err error
	if path != "" {
		e.state, err = load(path)
	}
	e.setRulesLocked(rules)
	return e, err
}

// SetRules replaces the rules (a reload); a rule kept by name keeps its
// state.
func (e *Evaluator) SetRules(rules Config) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.setRulesLocked(rules)
	if err := e.saveLocked(); err != nil {
		e.log.Error("alerts: state not saved", "err", err)
	}
}

func (e *Evaluator) setRulesLocked(rules Config) {
	e.rules = append([]Rule(nil), rules...)
	keep := map[string]*ruleState{}
	for _, r := range e.rules {
		if st, ok := e.state[r.Name]; ok {
			keep[r.Name] = st
		} else {
			keep[r.Name] = &ruleState{}
		}
	}
	for name, st := range e.state {
		if _, ok := keep[name]; !ok && st.Firing {
			e.log.Warn("alerts: a firing alert's rule is no longer configured; no resolved message will follow", "alert", name)
		}
	}
	e.state = keep
}

// Observe evaluates r, whose buffer seq is seq, against every rule on its
// sensor. When alerts are due it calls emit with them (stamped like r),
// which appends them to the buffer as consecutive records and returns the
// first one's seq; only if emit returns nil does Observe commit the new
// state and save it; if emit fails nothing changes and the next reading
// tries again. emit runs under the evaluator's lock, so alert records
// reach the buffer in the order the states changed.
func (e *Evaluator) Observe(r telemetry.Reading, seq uint64, emit func([]telemetry.Alert) (uint64, error)) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	type change struct {
		st   *ruleState
		next ruleState
	}
	var (
		out     []telemetry.Alert
		changes []change
	)
	for _, rule := range e.rules {
		if rule.Sensor != r.Sensor {
			continue
		}
		v, ok := r.Values[rule.Quantity]
		if !ok || !finite(v) {
			continue
		}
		st := e.state[rule.Name]
		next, state := step(rule, *st, v, r)
		if state != 0 {
			th, _ := rule.threshold()
			out = append(out, telemetry.Alert{Name: rule.Name, State: state, Sensor: r.Sensor, Quantity: rule.Quantity,
				Value: v, Threshold: th, ReadingSeq: seq, Time: r.Time, Clock: r.Clock, Boot: r.Boot, Mono: r.Mono})
		}
		changes = append(changes, change{st, next})
	}
	var first uint64
	if len(out) > 0 {
		var err error
		if first, err = emit(out); err != nil {
			return err
		}
	}
	for _, c := range changes {
		*c.st = c.next
	}
	for i, a := range out {
		e.state[a.Name].Seq = first + uint64(i)
	}
	if len(out) > 0 {
		if err := e.saveLocked(); err != nil {
			// The records are buffered; only a restart could repeat them.
			e.log.Error("alerts: state not saved; a restart may send these alerts again", "err", err)
		}
	}
	return nil
}

// step is the state machine: the rule's next state for value v of
// reading r, and the message due (0: none).
func step(rule Rule, st ruleState, v float64, r telemetry.Reading) (ruleState, telemetry.AlertState) {
	th, above := rule.threshold()
	beyond := v < th
	back := v > th+rule.Hysteresis
	if above {
		beyond, back = v > th, v < th-rule.Hysteresis
	}
	if st.Firing {
		if back {
			return ruleState{Seq: st.Seq}, telemetry.AlertResolved
		}
		if !st.sentKnown {
			// The first reading after a restart: the repeat clock goes on
			// from the last message when the wall clock can say how long
			// ago that was, else it starts over now.
			st.sentKnown, st.sentAt = true, r.Mono
			if ago := r.Time.Sub(st.Sent); r.Clock == telemetry.ClockSynced && !st.Sent.IsZero() && ago > 0 {
				st.sentAt = r.Mono - ago
			}
		}
		if rule.Repeat > 0 && r.Mono-st.sentAt >= rule.Repeat {
			st.sentAt, st.Sent = r.Mono, r.Time
			return st, telemetry.AlertFiring
		}
		return st, 0
	}
	if !beyond {
		return ruleState{Seq: st.Seq}, 0
	}
	if !st.pending {
		st.pending, st.pendingAt = true, r.Mono
	}
	if r.Mono-st.pendingAt < rule.For {
		return st, 0
	}
	return ruleState{Firing: true, Since: r.Time, Value: v, Sent: r.Time, Seq: st.Seq, sentAt: r.Mono, sentKnown: true}, telemetry.AlertFiring
}

// Restore applies an alert record found in the buffer at seq when it is
// newer than the saved state (a crash between the record's append and the
// state file's rename): the agent calls it for each alert record in seq
// order after New, then Save. Records of unknown rules are ignored.
func (e *Evaluator) Restore(seq uint64, a telemetry.Alert) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.state[a.Name]
	if st == nil || seq <= st.Seq {
		return false
	}
	switch a.State {
	case telemetry.AlertFiring:
		if !st.Firing {
			*st = ruleState{Firing: true, Since: a.Time, Value: a.Value}
		}
		st.Sent, st.sentKnown = a.Time, false
	case telemetry.AlertResolved:
		*st = ruleState{}
	}
	st.Seq = seq
	return true
}

// Save writes the state file now.
func (e *Evaluator) Save() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.saveLocked()
}

// Active lists the firing alerts, by name.
func (e *Evaluator) Active() []Active {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Active
	for _, r := range e.rules {
		st := e.state[r.Name]
		if st == nil || !st.Firing {
			continue
		}
		th, _ := r.threshold()
		out = append(out, Active{Name: r.Name, Sensor: r.Sensor, Quantity: r.Quantity, Threshold: th, Value: st.Value, Since: st.Since})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
