package shadow

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func liveOf(t *recTarget) State {
	var st State
	s := t.snap()
	for n, d := range s.interval {
		st.Sensors = append(st.Sensors, Sensor{Name: n, Interval: d, Enabled: s.enabled[n]})
	}
	return st
}

// ApplyOnce applies a valid document, and an invalid one not at all,
// with the errors by path the shadow would report; a Target that fails
// midway is undone.
func TestApplyOnce(t *testing.T) {
	names := []string{"a", "b"}
	tg := newTarget(map[string]time.Duration{"a": time.Second, "b": 2 * time.Second}, 1)
	doc := map[string]any{
		"sensors": map[string]any{"a": map[string]any{"interval": "5s"}, "b": map[string]any{"enabled": false}},
		"mqtt":    map[string]any{"batch": map[string]any{"max_readings": float64(10)}},
	}
	if errs := ApplyOnce(doc, names, 1, liveOf(tg), tg, nil); errs != nil {
		t.Fatalf("valid document: %v", errs)
	}
	s := tg.snap()
	if s.interval["a"] != 5*time.Second || s.enabled["b"] || s.batch != 10 {
		t.Fatalf("not applied: %+v", s)
	}

	before := tg.snap()
	bad := map[string]any{"sensors": map[string]any{
		"a":    map[string]any{"interval": "1ms"},
		"b":    map[string]any{"interval": "3s"},
		"nope": map[string]any{"enabled": true},
	}, "buffer": map[string]any{"dir": "/tmp"}, "mqtt": nil}
	errs := ApplyOnce(bad, names, 10, liveOf(tg), tg, nil)
	for _, p := range []string{"sensors.a.interval", "sensors.nope", "buffer", "mqtt.batch.max_readings"} {
		if errs[p] == "" {
			t.Errorf("no error for %s: %v", p, errs)
		}
	}
	if _, ok := errs["sensors.b.interval"]; ok {
		t.Errorf("an error for a valid path: %v", errs)
	}
	if !strings.Contains(errs["mqtt.batch.max_readings"], "only the shadow holds") {
		t.Errorf("null: %q", errs["mqtt.batch.max_readings"])
	}
	if !reflect.DeepEqual(tg.snap(), before) {
		t.Fatalf("an invalid document changed something: %+v", tg.snap())
	}

	tg.failOn = 7 * time.Second
	errs = ApplyOnce(map[string]any{"sensors": map[string]any{
		"a": map[string]any{"interval": "3s"}, "b": map[string]any{"interval": "7s"},
	}}, names, 10, liveOf(tg), tg, nil)
	if !strings.Contains(errs["sensors.b.interval"], "not applied: scheduler refused 7s") {
		t.Fatalf("target failure: %v", errs)
	}
	if !reflect.DeepEqual(tg.snap(), before) {
		t.Fatalf("a failed document was not undone: %+v", tg.snap())
	}
}
