package shadow

import (
	"encoding/json"
	"testing"
)

func TestDesiredPatch(t *testing.T) {
	cases := []struct{ key, value, want string }{
		{"sensors.sim.interval", "5s", `{"sensors":{"sim":{"interval":"5s"}}}`},
		{"sensors.sim.enabled", "false", `{"sensors":{"sim":{"enabled":false}}}`},
		{"sensors.air.v2.interval", "1m", `{"sensors":{"air.v2":{"interval":"1m"}}}`},
		{"sensors.sim.interval", "null", `{"sensors":{"sim":{"interval":null}}}`},
		{"mqtt.batch.max_readings", "10", `{"mqtt":{"batch":{"max_readings":10}}}`},
		{"mqtt.batch.max_readings", "2.50", `{"mqtt":{"batch":{"max_readings":2.50}}}`},
		{"sensors.sim.interval", `"30s"`, `{"sensors":{"sim":{"interval":"30s"}}}`},
		{"bogus", "banana split", `{"bogus":"banana split"}`},
		{"bogus", `1,"x":2`, `{"bogus":"1,\"x\":2"}`},
	}
	for _, tc := range cases {
		doc, err := DesiredPatch(tc.key, tc.value)
		if err != nil {
			t.Errorf("%s=%s: %v", tc.key, tc.value, err)
			continue
		}
		b, _ := json.Marshal(doc)
		if string(b) != tc.want {
			t.Errorf("%s=%s: %s, want %s", tc.key, tc.value, b, tc.want)
		}
	}
	for _, key := range []string{"sensors.sim", "sensors..interval", "sensors.sim.", "mqtt..batch", ""} {
		if _, err := DesiredPatch(key, "1"); err == nil {
			t.Errorf("%q accepted", key)
		}
	}
	// The patch is what the agent's rules see: an interval applies, a
	// typo comes back as an error entry.
	k := newKit(t, t.TempDir(), nil)
	doc, _ := DesiredPatch("sensors.a.interval", "45s")
	k.s.mu.Lock()
	out := k.s.applyLocked(normalise(doc), false)
	k.s.mu.Unlock()
	if out.failed || k.target.intervalOf("a").String() != "45s" {
		t.Fatalf("patch not applied: %+v", out)
	}
}
