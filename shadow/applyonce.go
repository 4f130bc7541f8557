package shadow

import (
	"log/slog"
)

// ApplyOnce applies a desired document to target by the shadow's rules
// (the same keys, forms and bounds; all or nothing: every value is checked
// first, and if a Target call fails the calls already made are undone)
// without a Shadow: no applied state, no state file, no report. It is
// the kitd.set-config job's way in. sensors are the configured sensor
// names; st is the live state and batchMaxReadings the batch size in
// force, the values an undo returns to. It returns the errors by desired
// path; nil means everything was applied.
//
// A null in doc is an error here: in the shadow it removes a remote
// setting, which only the shadow holds.
func ApplyOnce(doc map[string]any, sensors []string, batchMaxReadings int, st State, target Target, log *slog.Logger) map[string]string {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Shadow{target: target, log: log, base: newBase(sensors, batchMaxReadings), applied: map[key]setting{}}
	s.base.snapshot(st)
	p := parseDesired(doc, s.base.names)
	for _, r := range p.removals {
		path := "sensors"
		switch {
		case r.sensor != "":
			path = "sensors." + r.sensor
		case !r.all:
			path = r.key.path()
		}
		p.errs[path] = "null removes a remote setting, which only the shadow holds; give a value"
	}
	if len(p.errs) > 0 {
		return trimmedErrors(p.errs)
	}
	steps, serr := s.planLocked(p.sets)
	if serr == nil {
		serr = s.runLocked(steps)
	}
	if serr != nil {
		return map[string]string{serr.path: serr.msg}
	}
	return nil
}
