package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// alerts, output and https: each bad value is refused naming its path;
// with output: https the mqtt section is neither required nor checked,
// and https is checked only then.
func TestAlertsAndOutputsNameTheField(t *testing.T) {
	yaml, dir, pair := fixture(t)
	rules := "alerts:\n  - { name: dry-soil, sensor: soil-1, quantity: moisture, below: 35, hysteresis: 3, for: 5m, repeat: 6h }\n"
	cfg, err := load(t, yaml+rules)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Alerts) != 1 || *cfg.Alerts[0].Below != 35 || cfg.Alerts[0].For != 5*time.Minute || cfg.Output != OutputMQTT ||
		cfg.MQTT.AlertTopic != "kits/{device}/alerts" || cfg.Shadow.Heartbeat != time.Hour {
		t.Fatalf("decoded %+v", cfg)
	}
	keyFile := filepath.Join(dir, "api.key")
	os.WriteFile(keyFile, []byte("k\n"), 0o644)
	https := "output: https\nhttps: { url: https://api.example/prod/readings, api_key_file: " + keyFile + " }\n"
	noMQTT := yaml[:strings.Index(yaml, "mqtt:")] + yaml[strings.Index(yaml, "buffer:"):]
	for _, c := range []struct{ name, yaml, want string }{
		{"both above and below", yaml + strings.Replace(rules, "below: 35", "below: 35, above: 50", 1), "alerts[0] (dry-soil).below: set exactly one"},
		{"unknown sensor", yaml + strings.Replace(rules, "sensor: soil-1", "sensor: soil-9", 1), `alerts[0] (dry-soil).sensor: "soil-9" is not a configured sensor`},
		{"negative hysteresis", yaml + strings.Replace(rules, "hysteresis: 3", "hysteresis: -3", 1), "alerts[0] (dry-soil).hysteresis"},
		{"unknown alert key", yaml + strings.Replace(rules, "for: 5m", "fro: 5m", 1), "alerts[0] (dry-soil).fro: unknown key"},
		{"bad output", yaml + "output: amqp\n", `output: "amqp": want mqtt or https`},
		{"https without url", noMQTT + "output: https\n", "https.url: required"},
		{"world-readable api key", noMQTT + https, "https.api_key_file: "},
		{"heartbeat below min_report_interval", strings.Replace(yaml, "shadow:\n", "shadow:\n  heartbeat: 1s\n", 1), "shadow.heartbeat: must be at least min_report_interval"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := load(t, c.yaml)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error does not name %q:\n%v", c.want, err)
			}
			if strings.Contains(c.yaml, "output: https") && strings.Contains(err.Error(), "mqtt.") {
				t.Fatalf("mqtt checked with output: https:\n%v", err)
			}
		})
	}
	os.Chmod(keyFile, 0o600)
	if _, err := load(t, noMQTT+https); err != nil {
		t.Fatalf("output: https without an mqtt section: %v", err)
	}
	// With output: mqtt a half-filled https section is not looked at.
	if _, err := load(t, yaml+"https: { cert_file: /nonexistent }\n"); err != nil {
		t.Fatalf("https checked with output: mqtt: %v", err)
	}
	_ = pair
}
