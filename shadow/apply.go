package shadow

import (
	"fmt"
	"log/slog"
	"sort"
)

// outcome says what applying one desired document did.
type outcome struct {
	changed     bool  // the applied settings changed
	errsChanged bool  // the errors entries changed
	failed      bool  // nothing was applied
	valid       []key // settings the document gave valid values for
}

// step is one Target call of a plan, with the value to roll back to.
type step struct {
	k        key
	to, from setting
	undoable bool // from is known, so the call can be undone
}

// applyLocked applies a desired document all or nothing: every value is
// validated first, then the Target calls are made, and if one fails the
// calls already made are undone. full means the document is the whole
// desired state (from get or documents), so applied settings it lacks
// were removed remotely and return to the config file's values; a delta
// mentions only what changed.
func (s *Shadow) applyLocked(doc map[string]any, full bool) outcome {
	p := parseDesired(doc, s.base.names)
	var out outcome
	if full {
		// The whole desired state is here, so its errors are exactly the
		// entries to keep: a path removed or given a valid value has none,
		// even while another path keeps the document from being applied.
		bad := make(map[string]bool, len(p.errs))
		for path := range p.errs {
			bad[truncate(path, maxErrorKey)] = true
		}
		out.errsChanged = s.errs.clear(func(path string) bool { return !bad[path] })
	}
	if len(p.errs) > 0 {
		out.failed = true
		if s.errs.set(p.errs) {
			out.errsChanged = true
		}
		s.log.Warn("shadow: desired state rejected, nothing applied", "count", len(p.errs), "errors", errorsValue(p.errs))
		return out
	}

	next := make(map[key]setting, len(s.applied)+len(p.sets))
	for k, v := range s.applied {
		next[k] = v
	}
	for _, r := range p.removals {
		for k := range next {
			if r.matches(k) {
				delete(next, k)
			}
		}
	}
	if full {
		for k := range next {
			if _, ok := p.sets[k]; !ok {
				delete(next, k)
			}
		}
	}
	for k, v := range p.sets {
		next[k] = v
	}

	steps, err := s.planLocked(next)
	if err == nil {
		err = s.runLocked(steps)
	}
	if err != nil {
		out.failed = true
		out.errsChanged = s.errs.set(map[string]string{err.path: err.msg}) || out.errsChanged
		s.log.Warn("shadow: desired state not applied", "path", err.path, "err", err.msg)
		return out
	}

	out.changed = !sameSettings(s.applied, next)
	s.applied = next
	if full {
		out.errsChanged = s.errs.clear(func(string) bool { return true }) || out.errsChanged
	} else {
		out.errsChanged = s.errs.clear(func(path string) bool { return p.paths[path] }) || out.errsChanged
	}
	for k := range p.sets {
		out.valid = append(out.valid, k)
	}
	if out.changed {
		s.log.Info("shadow: desired state applied", "settings", settingsValue(next))
		if err := s.saveLocked(); err != nil {
			s.log.Error("shadow: applied but not persisted; a restart while offline reverts it", "err", err)
		}
	}
	return out
}

type stepError struct{ path, msg string }

// planLocked lists the Target calls that take the agent from its current
// settings to next, in a stable order.
func (s *Shadow) planLocked(next map[key]setting) ([]step, *stepError) {
	keys := make([]key, 0, len(next)+len(s.applied))
	for k := range s.applied {
		keys = append(keys, k)
	}
	for k := range next {
		if _, ok := s.applied[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].path() < keys[j].path() })
	var steps []step
	for _, k := range keys {
		if k.sensor != "" && !s.base.names[k.sensor] {
			continue // the sensor is gone from the config file: nothing runs it
		}
		from, known := s.effectiveLocked(k)
		to, ok := next[k]
		if !ok {
			if to, ok = s.base.value(k); !ok {
				return nil, &stepError{k.path(), "no config-file value to return to"}
			}
		}
		if !known || !from.sameEffect(to) {
			steps = append(steps, step{k: k, to: to, from: from, undoable: known})
		}
	}
	return steps, nil
}

// runLocked makes the calls; when one fails it undoes the ones made, in
// reverse, so the agent is left as it was.
func (s *Shadow) runLocked(steps []step) *stepError {
	for i, st := range steps {
		if err := s.call(st.k, st.to); err != nil {
			for j := i - 1; j >= 0; j-- {
				if !steps[j].undoable {
					s.log.Error("shadow: cannot undo: the previous value is unknown (missing from the state)", "path", steps[j].k.path())
					continue
				}
				if uerr := s.call(steps[j].k, steps[j].from); uerr != nil {
					s.log.Error("shadow: could not undo a partly applied desired state", "path", steps[j].k.path(), "err", uerr)
				}
			}
			return &stepError{st.k.path(), "not applied: " + err.Error()}
		}
	}
	return nil
}

func (s *Shadow) call(k key, v setting) error {
	switch k.field {
	case fieldInterval:
		return s.target.SetInterval(k.sensor, v.d)
	case fieldEnabled:
		return s.target.SetEnabled(k.sensor, v.on)
	case fieldBatch:
		return s.target.SetBatchMaxReadings(v.n)
	}
	return fmt.Errorf("shadow: unknown setting %s", k.path())
}

// effectiveLocked is the value in force: applied, else the config
// file's; false when neither is known.
func (s *Shadow) effectiveLocked(k key) (setting, bool) {
	if v, ok := s.applied[k]; ok {
		return v, true
	}
	return s.base.value(k)
}

func sameSettings(a, b map[key]setting) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || v.raw != w.raw {
			return false
		}
	}
	return true
}

// settingsValue puts one attribute per desired path in a log line,
// sorted (sensors.sim.interval=5s): a Go map would print as map[...],
// which no one reads or parses. errorsValue does the same for errors.
func settingsValue(m map[key]setting) slog.Value {
	attrs := make([]slog.Attr, 0, len(m))
	for k, v := range m {
		attrs = append(attrs, slog.String(k.path(), fmt.Sprint(v.raw)))
	}
	sort.Slice(attrs, func(i, j int) bool { return attrs[i].Key < attrs[j].Key })
	return slog.GroupValue(attrs...)
}
