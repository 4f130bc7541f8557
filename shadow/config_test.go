package shadow

import (
	"strings"
	"testing"
	"time"
)

func TestDefaultConfigValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	if !c.Enabled || c.Name != "" || c.StateFile != "/var/lib/kitd/shadow.json" || c.MinReportInterval != 10*time.Second || c.Heartbeat != time.Hour {
		t.Fatalf("defaults %+v", c)
	}
}

func TestConfigValidateNamesFields(t *testing.T) {
	cases := []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.MinReportInterval = 0 }, "min_report_interval: must be positive"},
		{func(c *Config) { c.MinReportInterval = 500 * time.Millisecond }, "min_report_interval: must be at least 1s"},
		{func(c *Config) { c.StateFile = "" }, "state_file: must not be empty"},
		{func(c *Config) { c.Name = "a/b" }, `name: "a/b"`},
		{func(c *Config) { c.Name = "$x" }, `name: "$x"`},
		{func(c *Config) { c.Name = strings.Repeat("n", 65) }, "name: "},
		{func(c *Config) { c.Heartbeat = 0 }, "heartbeat: must be positive"},
		{func(c *Config) { c.Heartbeat = 5 * time.Second }, "heartbeat: must be at least min_report_interval (10s)"},
	}
	for _, tc := range cases {
		c := DefaultConfig()
		tc.mod(&c)
		err := c.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("got %v, want prefix %q", err, tc.want)
		}
	}
	c := DefaultConfig()
	c.Enabled, c.StateFile = false, ""
	if err := c.Validate(); err != nil {
		t.Errorf("disabled shadow needs no state file: %v", err)
	}
	c = DefaultConfig()
	c.Name = "kitd-config:v1_2"
	if err := c.Validate(); err != nil {
		t.Errorf("valid name refused: %v", err)
	}
	c = DefaultConfig()
	c.MinReportInterval, c.StateFile = -1, ""
	if err := c.Validate(); err == nil || strings.Count(err.Error(), "\n") != 1 {
		t.Errorf("want both errors joined: %v", err)
	}
}

func TestNewRefusesBadArguments(t *testing.T) {
	st := func() State { return State{} }
	tg := newTarget(nil, 1)
	// Ids that would break the shadow's topics, refused by the one rule
	// (telemetry.CheckDevice) under the config key's name.
	for _, dev := range []string{"", "a/b", "kit+", "#", "$aws"} {
		if _, err := New(DefaultConfig(), Deps{Device: dev, BatchMaxReadings: 1, Target: tg, State: st}); err == nil || !strings.Contains(err.Error(), "device.id: ") {
			t.Errorf("device %q: %v", dev, err)
		}
	}
	if _, err := New(DefaultConfig(), Deps{Device: "kit", BatchMaxReadings: 1}); err == nil ||
		!strings.Contains(err.Error(), "nil target") || !strings.Contains(err.Error(), "nil state") {
		t.Errorf("nil target and state: %v", err)
	}
}
