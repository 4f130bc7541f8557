package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/internal/pki"
	"github.com/kitd-dev/kitd/sensors"
	"github.com/kitd-dev/kitd/sensors/sim"
)

// fixture writes a valid config with real certificate files and returns
// the YAML and the directory, so each case can break one thing.
func fixture(t *testing.T) (string, string, pki.Pair) {
	t.Helper()
	dir := t.TempDir()
	ca, err := pki.NewCA(filepath.Join(dir, "pki"), "test")
	if err != nil {
		t.Fatal(err)
	}
	p, err := ca.Client("kit-001", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	yaml := `device:
  id: kit-001
mqtt:
  broker: tls://broker.example:8883
  ca_file: ` + ca.CAFile + `
  cert_file: ` + p.CertFile + `
  key_file: ` + p.KeyFile + `
  keepalive: 30s
  batch: { max_readings: 1, max_bytes: 64KiB }
buffer:
  dir: ` + filepath.Join(dir, "buffer") + `
  max_bytes: 256MiB
  min_free_bytes: 64MiB
  sync: interval
  sync_interval: 1s
shadow:
  state_file: ` + filepath.Join(dir, "shadow.json") + `
sensors:
  - name: soil-1
    driver: sim
    interval: 10s
    options: { quantities: [moisture] }
  - name: air
    driver: sim
    interval: 30s
`
	return yaml, dir, p
}

func registry(t *testing.T) *sensors.Registry {
	t.Helper()
	r, err := sensors.NewRegistry(sim.Kind())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func load(t *testing.T, yaml string, env ...string) (*Config, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path, env)
	if err != nil {
		return nil, err
	}
	return cfg, cfg.Validate(registry(t))
}

func TestValidConfigLoads(t *testing.T) {
	yaml, _, _ := fixture(t)
	cfg, err := load(t, yaml)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MQTT.Keepalive != 30*time.Second || cfg.Buffer.MaxBytes != 256<<20 || len(cfg.Sensors) != 2 {
		t.Fatalf("decoded %+v", cfg)
	}
	if !cfg.Sensors[0].IsEnabled() || cfg.Sensors[0].Options["quantities"] == nil {
		t.Fatalf("sensor: %+v", cfg.Sensors[0])
	}
	// Defaults fill what the file leaves out.
	if cfg.MQTT.TelemetryTopic != "kits/{device}/telemetry" || !cfg.Shadow.Enabled || cfg.Shadow.MinReportInterval != 10*time.Second {
		t.Fatalf("defaults not applied: %+v %+v", cfg.MQTT, cfg.Shadow)
	}
}

// Every bad config issue 2 lists is rejected, and the error names the
// field (by its path) or the file.
func TestBadConfigsNameTheField(t *testing.T) {
	yaml, dir, pair := fixture(t)
	worldReadable := filepath.Join(dir, "open.key")
	b, _ := os.ReadFile(pair.KeyFile)
	os.WriteFile(worldReadable, b, 0o644)
	os.Chmod(worldReadable, 0o644)

	cases := []struct {
		name, from, to, want string
	}{
		{"unknown key", "  keepalive: 30s", "  keepalive: 30s\n  keepalvie: 30s", "mqtt.keepalvie: unknown key"},
		{"unknown top-level key", "device:", "devices: {}\ndevice:", "devices: unknown key"},
		{"unknown sensor key", "    interval: 10s", "    interval: 10s\n    intervall: 5s", "sensors[0] (soil-1).intervall: unknown key"},
		{"unknown key with no value", "device:", "sensor:\ndevice:", "sensor: unknown key"},
		{"unknown calibration key", "    interval: 30s", "    interval: 30s\n    calibrate: { temperature: { ofset: 1 } }", "sensors[1] (air).calibrate.temperature.ofset: unknown key"},
		{"missing device id", "  id: kit-001", "  id: \"\"", "device.id: required"},
		{"duration without unit", "  keepalive: 30s", "  keepalive: 30", "mqtt.keepalive"},
		{"interval without unit", "    interval: 10s", "    interval: 10", "sensors[0] (soil-1).interval: 10 is not a duration"},
		{"not a number", "  keepalive: 30s", "  keepalive: 30s\n  max_inflight: lots", "mqtt.max_inflight: want a whole number"},
		{"not a bool", "    interval: 30s", "    interval: 30s\n    enabled: maybe", "sensors[1] (air).enabled: want true or false"},
		{"zero interval", "    interval: 10s", "    interval: 0s", "sensors[0] (soil-1).interval: must be positive"},
		{"negative interval", "    interval: 30s", "    interval: -5s", "sensors[1] (air).interval: must be positive"},
		{"zero size", "  max_bytes: 256MiB", "  max_bytes: 0", "buffer.max_bytes"},
		{"negative size", "  max_bytes: 256MiB", "  max_bytes: -1MiB", "buffer.max_bytes"},
		{"bad size", "  max_bytes: 256MiB", "  max_bytes: lots", "buffer.max_bytes"},
		{"unknown driver", "    driver: sim\n    interval: 30s", "    driver: bme281\n    interval: 30s", `sensors[1] (air).driver: unknown driver "bme281"`},
		{"duplicate sensor names", "  - name: air", "  - name: soil-1", "sensors[1] (soil-1).name: duplicate of sensors[0]"},
		{"unknown broker scheme", "tls://broker.example:8883", "http://broker.example:8883", "mqtt.broker"},
		{"missing CA file", "  ca_file: " + filepath.Join(dir, "pki", "ca.pem"), "  ca_file: /nonexistent/ca.pem", "mqtt.ca_file"},
		{"missing cert file", "  cert_file: " + pair.CertFile, "  cert_file: /nonexistent/cert.pem", "mqtt.cert_file"},
		{"missing key file", "  key_file: " + pair.KeyFile, "  key_file: /nonexistent/key.pem", "mqtt.key_file"},
		{"world-readable key", "  key_file: " + pair.KeyFile, "  key_file: " + worldReadable, "mqtt.key_file"},
		{"unknown sim option", "    options: { quantities: [moisture] }", "    options: { quantities: [moisture], colour: red }", "sensors[0] (soil-1).options.colour: unknown option"},
		{"bad sync policy", "  sync: interval", "  sync: sometimes", "buffer.sync"},
		{"provisioning without MQTT", "device:", "output: https\nhttps: { url: https://api.example/readings }\nprovisioning: { template: t, claim_cert_file: " + pair.CertFile + ", claim_key_file: " + pair.KeyFile + " }\ndevice:", "provisioning.template: fleet provisioning needs output: mqtt"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(yaml, c.from) {
				t.Fatalf("fixture lacks %q", c.from)
			}
			bad := strings.Replace(yaml, c.from, c.to, 1)
			_, err := load(t, bad)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error does not name %q:\n%v", c.want, err)
			}
		})
	}
}

func TestGroupReadableKeyIsFine(t *testing.T) {
	yaml, _, pair := fixture(t)
	if err := os.Chmod(pair.KeyFile, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := load(t, yaml); err != nil {
		t.Fatalf("0640 key refused: %v", err)
	}
}

func TestEmptyAndNonYAMLFiles(t *testing.T) {
	for name, body := range map[string]string{
		"empty":    "",
		"blank":    "  \n\n",
		"not yaml": "device: [unclosed\n  id: x",
		"a list":   "- a\n- b\n",
		"a scalar": "hello",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.yaml")
			os.WriteFile(path, []byte(body), 0o600)
			_, err := Load(path, nil)
			if err == nil || !strings.Contains(err.Error(), path) {
				t.Fatalf("want an error naming %s, got %v", path, err)
			}
		})
	}
	if _, err := Load("/nonexistent/kitd.yaml", nil); err == nil || !strings.Contains(err.Error(), "/nonexistent/kitd.yaml") {
		t.Fatalf("missing file: %v", err)
	}
}

// The config file is read like the files it names: a FIFO is refused at
// once instead of blocking kitd for ever, /dev/zero instead of filling
// memory, a file over 1 MiB by its size; each error names the file.
func TestLoadRefusesFilesThatAreNotConfigs(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "kitd.yaml")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(big, bytes.Repeat([]byte("# padding\n"), 1<<17), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, want string }{
		{fifo, fifo + " is a named pipe (FIFO), not a regular file"},
		{"/dev/zero", "/dev/zero is a character device"},
		{big, big},
	} {
		done := make(chan error, 1)
		go func() {
			_, err := Load(c.path, nil)
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !errors.Is(err, ErrFile) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Load(%s) = %v, want an ErrFile naming %q", c.path, err, c.want)
			}
		case <-time.After(time.Minute):
			t.Fatalf("Load(%s) still blocked after a minute", c.path)
		}
	}
}

// Check lists form errors (unknown keys, wrong types) and value errors
// together, without repeating a field that did not decode.
func TestCheckListsEveryError(t *testing.T) {
	yaml, _, _ := fixture(t)
	bad := strings.Replace(yaml, "  keepalive: 30s", "  kepalive: 30s", 1)
	bad = strings.Replace(bad, "    interval: 10s", "    interval: 10", 1)
	bad = strings.Replace(bad, "    driver: sim\n    interval: 30s", "    driver: nope\n    interval: 30s", 1)
	path := filepath.Join(t.TempDir(), "config.yaml")
	os.WriteFile(path, []byte(bad), 0o600)
	_, err := Check(path, nil, registry(t))
	if err == nil {
		t.Fatal("accepted")
	}
	msg := err.Error()
	for _, want := range []string{path, "mqtt.kepalive: unknown key", "sensors[0] (soil-1).interval: 10 is not a duration", `sensors[1] (air).driver: unknown driver "nope"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "(soil-1).interval: must be positive") {
		t.Errorf("the undecoded interval is reported twice:\n%s", msg)
	}
	good, _, _ := fixture(t)
	os.WriteFile(path, []byte(good), 0o600)
	if _, err := Check(path, nil, registry(t)); err != nil {
		t.Fatal(err)
	}
}

// Every error is reported at once, not the first only.
func TestAllErrorsReported(t *testing.T) {
	yaml, _, _ := fixture(t)
	bad := strings.Replace(yaml, "  id: kit-001", "  id: \"\"", 1)
	bad = strings.Replace(bad, "    interval: 30s", "    interval: 0s", 1)
	_, err := load(t, bad)
	if err == nil || !strings.Contains(err.Error(), "device.id") || !strings.Contains(err.Error(), "sensors[1] (air).interval") {
		t.Fatalf("want both errors, got %v", err)
	}
}

func TestEnvironmentOverrides(t *testing.T) {
	yaml, _, _ := fixture(t)
	cfg, err := load(t, yaml,
		"KITD_MQTT_BROKER=tls://other.example:8883",
		"KITD_MQTT_BATCH_MAX_READINGS=50",
		"KITD_MQTT_KEEPALIVE=45s",
		"KITD_BUFFER_MAX_BYTES=128MiB",
		"KITD_CLOCK_TRUST_SYSTEM=true",
		"KITD_DEVICE_ID=kit-002",
		"OTHER=ignored")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MQTT.Broker != "tls://other.example:8883" || cfg.MQTT.Batch.MaxReadings != 50 ||
		cfg.MQTT.Keepalive != 45*time.Second || cfg.Buffer.MaxBytes != 128<<20 || !cfg.Clock.TrustSystem || cfg.Device.ID != "kit-002" {
		t.Fatalf("overrides not applied: %+v", cfg)
	}
	if _, err := load(t, yaml, "KITD_MQTT_KEEPALIVE=45"); err == nil || !strings.Contains(err.Error(), `mqtt.keepalive: "45" is not a duration`) || !strings.Contains(err.Error(), "KITD_MQTT_KEEPALIVE") {
		t.Fatalf("unitless duration from the environment: %v", err)
	}
	// A bad value from the environment names the variable, not only the file.
	if _, err := load(t, yaml, "KITD_MQTT_BATCH_MAX_READINGS=abc"); err == nil || !strings.Contains(err.Error(), `mqtt.batch.max_readings: want a whole number (from KITD_MQTT_BATCH_MAX_READINGS="abc")`) {
		t.Fatalf("bad environment value: %v", err)
	}
}

func TestWriteShowsEffectiveConfigWithoutKeys(t *testing.T) {
	yaml, _, pair := fixture(t)
	cfg, err := load(t, yaml)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := cfg.Write(&out); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{"keepalive: 30s", "max_bytes: 256MiB", "key_file: " + pair.KeyFile, "name: soil-1", "interval: 10s"} {
		if !strings.Contains(s, want) {
			t.Errorf("effective config lacks %q:\n%s", want, s)
		}
	}
	key, _ := os.ReadFile(pair.KeyFile)
	if strings.Contains(s, "PRIVATE KEY") || strings.Contains(s, string(key[30:60])) {
		t.Fatal("key material in the printed config")
	}
	// What it prints loads again to the same config.
	again, err := Parse("printed", out.Bytes(), nil)
	if err != nil {
		t.Fatalf("printed config does not load: %v\n%s", err, s)
	}
	if again.MQTT != cfg.MQTT || again.Buffer != cfg.Buffer {
		t.Fatalf("round trip changed the config")
	}
}

func TestShippedExamplesParse(t *testing.T) {
	for _, f := range []string{"../configs/demo.yaml", "../configs/kit.yaml", "../configs/aws.yaml"} {
		if _, err := Load(f, nil); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// Relative paths mean the same wherever kitd starts: beside the config
// file, from the file or the environment; absolute ones stay as written.
func TestRelativePathsResolveAgainstConfigDir(t *testing.T) {
	yaml, dir, p := fixture(t)
	ca := filepath.Join(dir, "pki", "ca.pem")
	if _, err := os.Stat(ca); err != nil {
		t.Fatalf("fixture's CA is not where this test expects it: %v", err)
	}
	yaml = strings.Replace(yaml, ca, "pki/ca.pem", 1)
	yaml = strings.Replace(yaml, p.CertFile, "./"+filepath.Base(p.CertFile), 1)
	yaml = strings.Replace(yaml, filepath.Join(dir, "buffer"), "buffer", 1)
	// The key stays absolute; state_file comes from the environment.
	elsewhere := filepath.Join(dir, "conf")
	if err := os.Mkdir(elsewhere, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "kitd.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p.CertFile, filepath.Join(dir, filepath.Base(p.CertFile))); err != nil {
		t.Fatal(err)
	}
	// A relative -c, from another working directory.
	t.Chdir(elsewhere)
	cfg, err := Check("../kitd.yaml", []string{"KITD_SHADOW_STATE_FILE=state/shadow.json"}, registry(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ key, got, want string }{
		{"mqtt.ca_file", cfg.MQTT.CAFile, ca},
		{"mqtt.cert_file", cfg.MQTT.CertFile, filepath.Join(dir, filepath.Base(p.CertFile))},
		{"mqtt.key_file", cfg.MQTT.KeyFile, p.KeyFile},
		{"buffer.dir", cfg.Buffer.Dir, filepath.Join(dir, "buffer")},
		{"shadow.state_file", cfg.Shadow.StateFile, filepath.Join(dir, "state", "shadow.json")},
	} {
		if c.got != c.want {
			t.Errorf("%s: %q, want %q", c.key, c.got, c.want)
		}
	}
}

// Skipping PartFiles checks everything but the files: a kit's config can
// be checked on a machine that does not hold its certificates.
func TestValidatePartsWithoutFiles(t *testing.T) {
	yaml, dir, _ := fixture(t)
	yaml = strings.Replace(yaml, filepath.Join(dir, "pki"), "/nonexistent", -1)
	path := filepath.Join(dir, "kitd.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Check(path, nil, registry(t))
	for _, key := range []string{"mqtt.ca_file: ", "mqtt.cert_file: ", "mqtt.key_file: "} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("Check: %v, want %s refused", err, key)
		}
	}
	if _, err := CheckParts(path, nil, registry(t), AllParts&^PartFiles); err != nil {
		t.Errorf("without PartFiles: %v", err)
	}
	// Everything else is still checked, including that a TLS broker's
	// files are named at all.
	_, err = CheckParts(path, []string{"KITD_MQTT_KEEPALIVE=0s", "KITD_MQTT_KEY_FILE=", "KITD_DEVICE_ID=kit/1"}, registry(t), AllParts&^PartFiles)
	for _, want := range []string{"mqtt.keepalive: must be positive", "mqtt.key_file: required for a TLS broker", `device.id: "kit/1"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("without PartFiles: %v, want %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "/nonexistent") {
		t.Errorf("without PartFiles, a file was read: %v", err)
	}
	// One part: the others' errors do not show.
	_, err = CheckParts(path, []string{"KITD_MQTT_KEEPALIVE=0s", "KITD_BUFFER_SYNC=sometimes"}, nil, PartBuffer)
	if err == nil || !strings.Contains(err.Error(), "buffer.sync") || strings.Contains(err.Error(), "mqtt.") {
		t.Errorf("PartBuffer: %v", err)
	}
}
