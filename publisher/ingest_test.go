package publisher

import (
	"strings"
	"testing"
)

func TestBasicIngestTopics(t *testing.T) {
	for _, c := range []struct {
		topic string
		want  string // "" = valid
	}{
		{"$aws/rules/KitdReadings/kits/{device}/telemetry", ""},
		{"$aws/rules/kitd_readings_2/t", ""},
		{"$aws/rules/R/a/b/c/d/e/f/g/h", ""}, // 7 slashes after the prefix
		{"$aws/rules/R/a/b/c/d/e/f/g/h/i", "at most 7 slashes"},
		{"$aws/rules/KitdReadings", "add the topic the rule's SQL selects"},
		{"$aws/rules/KitdReadings/", "add the topic the rule's SQL selects"},
		{"$aws/rules/kitd-readings/kits/{device}/telemetry", `"kitd-readings" is not an AWS IoT rule name`},
		{"$aws/rules/{device}/telemetry", "is not an AWS IoT rule name"},
		{"$aws/rules//telemetry", "is not an AWS IoT rule name"},
		{"$aws/things/{device}/shadow/update", "the only one for telemetry is Basic Ingest"},
		{"kits/{device}/telemetry", ""},
	} {
		cfg := DefaultConfig()
		cfg.Broker = "tcp://127.0.0.1:1"
		cfg.TelemetryTopic = c.topic
		err := cfg.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.topic, err)
		case c.want != "" && (err == nil || !strings.HasPrefix(err.Error(), "telemetry_topic: ") || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want telemetry_topic: ...%s", c.topic, err, c.want)
		}
	}
}

// {device} still works under the Basic Ingest prefix: the topic the kit
// publishes on is its own.
func TestBasicIngestDeviceSubstitution(t *testing.T) {
	p, _, _ := packer(t, func(c *Config) { c.TelemetryTopic = "$aws/rules/KitdReadings/kits/{device}/telemetry" }, nil)
	if p.telemetryTopic != "$aws/rules/KitdReadings/kits/"+kit+"/telemetry" {
		t.Fatalf("topic %q", p.telemetryTopic)
	}
}
