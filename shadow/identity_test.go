package shadow

import (
	"strings"
	"testing"
	"time"
)

// While a renewed certificate has not connected yet, the old one is kept
// and its expiry reported beside the new one's; afterwards the key goes.
func TestReportsThePreviousCertificatesExpiry(t *testing.T) {
	k := newKit(t, t.TempDir(), nil)
	st := k.live.get()
	st.Agent.CertPreviousExpires = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	doc := k.s.buildWith(st, 200)
	agent := doc["agent"].(map[string]any)
	if agent["cert_previous_expires"] != "2026-12-01T00:00:00.000Z" || agent["cert_expires"] != "2027-11-21T12:00:00.000Z" {
		t.Errorf("agent %v: want both expiries", agent)
	}
	st.Agent.CertPreviousExpires = time.Time{}
	agent = k.s.buildWith(st, 200)["agent"].(map[string]any)
	if _, ok := agent["cert_previous_expires"]; ok {
		t.Errorf("cert_previous_expires reported with no previous certificate: %v", agent)
	}
	for k, v := range agent {
		if s, ok := v.(string); ok && strings.Contains(s, "PRIVATE") {
			t.Errorf("agent.%s holds key material", k)
		}
	}
}
