package shadow

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"
)

// FuzzDelta feeds arbitrary delta messages to the shadow: it never
// panics and never applies part of a document. The Target refuses 777ms,
// so documents that fail mid-way, after other calls were made, are in the
// mix too.
func FuzzDelta(f *testing.F) {
	for _, seed := range []string{
		`{"version":3,"state":{"sensors":{"a":{"interval":"60s"}}}}`,
		`{"version":3,"state":{"sensors":{"a":{"interval":"60s","enabled":false},"b":{"interval":"777ms"}}}}`,
		`{"version":3,"state":{"sensors":{"a":{"interval":"5s"},"b":{"interval":"50ms"}},"bogus":1}}`,
		`{"version":3,"state":{"mqtt":{"batch":{"max_readings":5.0}},"sensors":{"b":{"enabled":true}}}}`,
		`{"version":3,"state":{"mqtt":{"batch":{"max_readings":1e400}}}}`,
		`{"version":3,"state":{"sensors":{"a":null,"b":{"interval":null}},"mqtt":null}}`,
		`{"version":-1,"state":{"sensors":{"a":{"interval":"2s"}}}}`,
		`{"version":1,"state":[1,2]}`,
		`{"state":{"sensors":{"a":{"interval":"1h","enabled":"no"}}}}`,
		`{"version":"x"}`,
		`null`,
		`{"version":9,"state":{"sensors":{"a":{"interval":"9223372036854775807ns"}}}}`,
	} {
		f.Add([]byte(seed))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, payload []byte) {
		target := newTarget(map[string]time.Duration{"a": time.Second, "b": 2 * time.Second}, 1)
		target.failOn = 777 * time.Millisecond
		live := &liveState{target: target, st: State{Sensors: []Sensor{{Name: "a"}, {Name: "b"}}}}
		cfg := DefaultConfig()
		cfg.StateFile = filepath.Join(dir, "shadow.json")
		s, err := New(cfg, Deps{Device: kitID, Sensors: []string{"a", "b"}, BatchMaxReadings: 1, Target: target, State: live.get})
		if err != nil {
			t.Fatal(err)
		}
		// Two remote settings in force, so removals have something to
		// return to the config file's values.
		start, _ := decodeObject([]byte(`{"sensors":{"a":{"interval":"30s"}},"mqtt":{"batch":{"max_readings":4}}}`))
		s.mu.Lock()
		s.base.snapshot(live.get())
		if out := s.applyLocked(start, false); out.failed {
			s.mu.Unlock()
			t.Fatal("start settings refused")
		}
		s.mu.Unlock()
		before := target.snap()

		s.handleDelta(payload)
		after := target.snap()

		// What the document asks for, by the same rules.
		var d struct {
			Version int64          `json:"version"`
			State   map[string]any `json:"state"`
		}
		if decodeInto(payload, &d) != nil || d.Version < 0 {
			if !sameSnap(before, after) {
				t.Fatalf("an ignored message changed the target: %+v -> %+v", before, after)
			}
			return
		}
		p := parseDesired(orEmpty(d.State), map[string]bool{"a": true, "b": true})
		failsInTarget := false
		for k, v := range p.sets {
			if k.field == fieldInterval && v.d == target.failOn {
				failsInTarget = true
			}
		}
		if len(p.errs) > 0 || failsInTarget {
			if !sameSnap(before, after) {
				b, _ := json.Marshal(d.State)
				t.Fatalf("partial apply of a refused document %s: %+v -> %+v", b, before, after)
			}
			return
		}
		want := target.snap()
		want.interval, want.enabled, want.batch = copyDur(before.interval), copyBool(before.enabled), before.batch
		for _, r := range p.removals {
			if r.matches(key{sensor: "a", field: fieldInterval}) {
				want.interval["a"] = time.Second
			}
			if r.matches(batchKey) {
				want.batch = 1
			}
		}
		for k, v := range p.sets {
			switch k.field {
			case fieldInterval:
				want.interval[k.sensor] = v.d
			case fieldEnabled:
				want.enabled[k.sensor] = v.on
			case fieldBatch:
				want.batch = v.n
			}
		}
		if !sameSnap(want, after) {
			b, _ := json.Marshal(d.State)
			t.Fatalf("valid document %s not wholly applied: want %+v, got %+v", b, want, after)
		}
	})
}

func copyDur(m map[string]time.Duration) map[string]time.Duration {
	out := map[string]time.Duration{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func copyBool(m map[string]bool) map[string]bool {
	out := map[string]bool{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}
