package shadow

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"
)

// The desired rules: each path, its form, its bounds, the message.
func TestParseDesiredRules(t *testing.T) {
	names := map[string]bool{"a": true, "b.c": true}
	cases := []struct {
		doc   string
		sets  map[string]any // path → raw
		errs  map[string]string
		nulls int
	}{
		{`{"sensors":{"a":{"interval":"60s"}}}`, map[string]any{"sensors.a.interval": "60s"}, nil, 0},
		{`{"sensors":{"a":{"interval":"1m30s","enabled":false}}}`, map[string]any{"sensors.a.interval": "1m30s", "sensors.a.enabled": false}, nil, 0},
		{`{"sensors":{"b.c":{"interval":"100ms"}}}`, map[string]any{"sensors.b.c.interval": "100ms"}, nil, 0},
		{`{"sensors":{"a":{"interval":"24h"}}}`, map[string]any{"sensors.a.interval": "24h"}, nil, 0},
		{`{"mqtt":{"batch":{"max_readings":1000}}}`, map[string]any{"mqtt.batch.max_readings": json.Number("1000")}, nil, 0},
		{`{"mqtt":{"batch":{"max_readings":5.0}}}`, map[string]any{"mqtt.batch.max_readings": json.Number("5.0")}, nil, 0},
		{`{"mqtt":{"batch":{"max_readings":1e1}}}`, map[string]any{"mqtt.batch.max_readings": json.Number("1e1")}, nil, 0},
		{`{"sensors":{"a":{"interval":"99ms"}}}`, nil, map[string]string{"sensors.a.interval": "must be at least 100ms"}, 0},
		{`{"sensors":{"a":{"interval":"25h"}}}`, nil, map[string]string{"sensors.a.interval": "must be at most 24h"}, 0},
		{`{"sensors":{"a":{"interval":"-1s"}}}`, nil, map[string]string{"sensors.a.interval": "must be positive"}, 0},
		{`{"sensors":{"a":{"interval":"soon"}}}`, nil, map[string]string{"sensors.a.interval": `"soon" is not a duration`}, 0},
		{`{"sensors":{"a":{"interval":60}}}`, nil, map[string]string{"sensors.a.interval": "must be a duration string"}, 0},
		{`{"sensors":{"a":{"enabled":"true"}}}`, nil, map[string]string{"sensors.a.enabled": "must be true or false"}, 0},
		{`{"sensors":{"a":{"timeout":"5s"}}}`, nil, map[string]string{"sensors.a.timeout": "unknown key"}, 0},
		{`{"sensors":{"zz":{"interval":"5s"}}}`, nil, map[string]string{"sensors.zz": "no such sensor"}, 0},
		{`{"sensors":{"a":"fast"}}`, nil, map[string]string{"sensors.a": "must be an object"}, 0},
		{`{"sensors":[1]}`, nil, map[string]string{"sensors": "must be an object"}, 0},
		{`{"mqtt":{"batch":{"max_readings":0}}}`, nil, map[string]string{"mqtt.batch.max_readings": "from 1 to 1000"}, 0},
		{`{"mqtt":{"batch":{"max_readings":1001}}}`, nil, map[string]string{"mqtt.batch.max_readings": "from 1 to 1000"}, 0},
		{`{"mqtt":{"batch":{"max_readings":2.5}}}`, nil, map[string]string{"mqtt.batch.max_readings": "integer"}, 0},
		{`{"mqtt":{"batch":{"max_readings":"5"}}}`, nil, map[string]string{"mqtt.batch.max_readings": "integer"}, 0},
		{`{"mqtt":{"batch":{"max_bytes":5}}}`, nil, map[string]string{"mqtt.batch.max_bytes": "unknown key"}, 0},
		{`{"mqtt":{"keepalive":"5s"}}`, nil, map[string]string{"mqtt.keepalive": "unknown key"}, 0},
		{`{"mqtt":7}`, nil, map[string]string{"mqtt": "must be an object"}, 0},
		{`{"buffer":{"max_bytes":1}}`, nil, map[string]string{"buffer": "unknown key"}, 0},
		// Removals are always fine, even of what was never there.
		{`{"sensors":{"a":{"interval":null}}}`, nil, nil, 1},
		{`{"sensors":{"a":null}}`, nil, nil, 1},
		{`{"sensors":null}`, nil, nil, 1},
		{`{"sensors":{"gone":null}}`, nil, nil, 1},
		{`{"sensors":{"gone":{"interval":null}}}`, nil, nil, 1},
		{`{"mqtt":null}`, nil, nil, 1},
		{`{"mqtt":{"batch":null}}`, nil, nil, 1},
		{`{"mqtt":{"batch":{"max_readings":null}}}`, nil, nil, 1},
		{`{"bogus":null}`, nil, nil, 0},
	}
	for _, tc := range cases {
		doc, err := decodeObject([]byte(tc.doc))
		if err != nil {
			t.Fatal(err)
		}
		p := parseDesired(doc, names)
		got := map[string]any{}
		for k, v := range p.sets {
			got[k.path()] = v.raw
		}
		if len(got) != len(tc.sets) {
			t.Errorf("%s: sets %v, want %v", tc.doc, got, tc.sets)
		}
		for path, raw := range tc.sets {
			if got[path] != raw {
				t.Errorf("%s: %s = %#v, want %#v", tc.doc, path, got[path], raw)
			}
		}
		if len(p.errs) != len(tc.errs) {
			t.Errorf("%s: errors %v, want %v", tc.doc, p.errs, tc.errs)
		}
		for path, msg := range tc.errs {
			if !strings.Contains(p.errs[path], msg) {
				t.Errorf("%s: error at %s = %q, want %q", tc.doc, path, p.errs[path], msg)
			}
		}
		if len(p.removals) != tc.nulls {
			t.Errorf("%s: %d removals, want %d", tc.doc, len(p.removals), tc.nulls)
		}
	}
}

// A Target failure in the middle of a document undoes the calls already
// made: the document is applied all or nothing even then.
func TestTargetFailureRollsBack(t *testing.T) {
	k := newKit(t, t.TempDir(), nil)
	if err := k.s.ApplyPersisted(); err != nil {
		t.Fatal(err)
	}
	k.target.failOn = 777 * time.Millisecond
	before := k.target.snap()
	doc, _ := decodeObject([]byte(`{"mqtt":{"batch":{"max_readings":9}},"sensors":{"a":{"interval":"5s","enabled":false},"b":{"interval":"777ms"}}}`))
	k.s.mu.Lock()
	out := k.s.applyLocked(doc, false)
	errs := copyErrs(k.s.errs)
	k.s.mu.Unlock()
	if !out.failed || out.changed {
		t.Fatalf("outcome %+v", out)
	}
	if after := k.target.snap(); !sameSnap(before, after) {
		t.Fatalf("target changed: %+v -> %+v", before, after)
	}
	if !strings.Contains(errs["sensors.b.interval"], "not applied: scheduler refused 777ms") {
		t.Fatalf("errors %v", errs)
	}
	// The calls made were undone, in reverse.
	k.target.mu.Lock()
	calls := strings.Join(k.target.calls, "; ")
	k.target.mu.Unlock()
	want := "batch 9; enabled a false; interval a 5s; interval b 777ms; interval a 1s; enabled a true; batch 1"
	if calls != want {
		t.Fatalf("calls\n got %s\nwant %s", calls, want)
	}
}

func copyErrs(m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func sameSnap(a, b targetSnap) bool {
	if a.batch != b.batch || len(a.interval) != len(b.interval) || len(a.enabled) != len(b.enabled) {
		return false
	}
	for k, v := range a.interval {
		if b.interval[k] != v {
			return false
		}
	}
	for k, v := range a.enabled {
		if b.enabled[k] != v {
			return false
		}
	}
	return true
}

// The errors entries are bounded, their keys and messages trimmed.
func TestErrorsBounded(t *testing.T) {
	k := newKit(t, t.TempDir(), nil)
	doc := map[string]any{}
	for i := 0; i < 40; i++ {
		doc[fmt.Sprintf("k%02d", i)+strings.Repeat("x", 200)] = 1
	}
	k.s.mu.Lock()
	k.s.applyLocked(doc, false)
	errs := copyErrs(k.s.errs)
	k.s.mu.Unlock()
	if n := len(k.logs.String()); n > 2000 {
		t.Fatalf("one junk document logged %d bytes", n)
	}
	if len(errs) != maxErrors {
		t.Fatalf("%d errors entries", len(errs))
	}
	var ks []string
	for p, m := range errs {
		if len(p) > maxErrorKey || len(m) > maxErrorString {
			t.Fatalf("entry not trimmed: %q: %q", p, m)
		}
		ks = append(ks, p)
	}
	sort.Strings(ks)
	if !strings.HasSuffix(ks[0], "...") {
		t.Fatalf("trimmed key not marked: %q", ks[0])
	}
}

// Desired state in the log reads as key=value per path, never as a Go
// map: what was rejected and why, then what was applied.
func TestDesiredStateLogLines(t *testing.T) {
	k := newKit(t, t.TempDir(), nil)
	k.s.mu.Lock()
	k.s.applyLocked(map[string]any{"sensors": map[string]any{
		"a": map[string]any{"interval": "0s"},
		"c": map[string]any{"enabled": false},
	}}, false)
	k.s.mu.Unlock()
	rejected := k.logs.String()
	for _, want := range []string{
		`msg="shadow: desired state rejected, nothing applied" `,
		` count=2 errors.sensors.a.interval="must be positive" errors.sensors.c="no such sensor in the config file"`,
	} {
		if !strings.Contains(rejected, want) {
			t.Errorf("log lacks %q:\n%s", want, rejected)
		}
	}
	k.s.mu.Lock()
	k.s.applyLocked(map[string]any{
		"sensors": map[string]any{"a": map[string]any{"interval": "5s"}, "b": map[string]any{"enabled": false}},
		"mqtt":    map[string]any{"batch": map[string]any{"max_readings": json.Number("10")}},
	}, true)
	k.s.mu.Unlock()
	applied := strings.TrimPrefix(k.logs.String(), rejected)
	want := ` settings.mqtt.batch.max_readings=10 settings.sensors.a.interval=5s settings.sensors.b.enabled=false`
	if !strings.Contains(applied, `msg="shadow: desired state applied"`) || !strings.Contains(applied, want) {
		t.Errorf("log lacks %q:\n%s", want, applied)
	}
	if all := k.logs.String(); strings.Contains(all, "map[") {
		t.Errorf("Go map syntax in the log:\n%s", all)
	}
}

// More errors than the report keeps: the log line says how many it left out.
func TestDesiredStateLogLineBounded(t *testing.T) {
	k := newKit(t, t.TempDir(), nil)
	doc := map[string]any{}
	for i := range maxErrors + 3 {
		doc[fmt.Sprintf("k%d", i)] = 1
	}
	k.s.mu.Lock()
	k.s.applyLocked(doc, false)
	k.s.mu.Unlock()
	if l := k.logs.String(); !strings.Contains(l, fmt.Sprintf("count=%d", maxErrors+3)) || !strings.Contains(l, " errors.not_shown=3") {
		t.Errorf("log line:\n%s", l)
	}
}
