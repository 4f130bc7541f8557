package shadow

import "time"

// base is the config file's side of the desired settings: the sensors it
// names (desired settings for any other are errors) and its values, which
// a removed desired setting returns to. It is read from the live state
// while that still shows the config file, before any desired setting is
// applied; Reapply takes it again after a reload.
type base struct {
	names    map[string]bool
	taken    bool // the per-sensor values were read from the live state
	interval map[string]time.Duration
	enabled  map[string]bool
	batch    int
}

func newBase(sensors []string, batchMaxReadings int) base {
	return base{
		names:    nameSet(sensors),
		interval: map[string]time.Duration{},
		enabled:  map[string]bool{},
		batch:    batchMaxReadings,
	}
}

func nameSet(names []string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// snapshot takes the per-sensor values from the live state, which shows
// the config file's before any desired setting is applied.
func (b *base) snapshot(st State) {
	b.taken = true
	b.interval = map[string]time.Duration{}
	b.enabled = map[string]bool{}
	for _, sn := range st.Sensors {
		if b.names[sn.Name] {
			b.interval[sn.Name] = sn.Interval
			b.enabled[sn.Name] = sn.Enabled
		}
	}
}

// value is the config file's value of a setting; false when unknown (a
// sensor missing from the state).
func (b *base) value(k key) (setting, bool) {
	switch k.field {
	case fieldInterval:
		d, ok := b.interval[k.sensor]
		return setting{raw: d.String(), d: d}, ok
	case fieldEnabled:
		on, ok := b.enabled[k.sensor]
		return setting{raw: on, on: on}, ok
	case fieldBatch:
		return setting{n: b.batch}, true
	}
	return setting{}, false
}

// hasBase says whether the config file's values were taken (by
// ApplyPersisted), so a connect need not read the live state for them.
func (s *Shadow) hasBase() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.base.taken
}
