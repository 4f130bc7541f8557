//go:build armsmoke

package arm

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/internal/mosquittotest"
	"github.com/kitd-dev/kitd/internal/testkit"
)

const device = "kit-arm"

// The GOARCH=arm GOARM=6 binary, as the armhf package ships it, under
// qemu-arm-static: version, config check, and a short run with simulated
// sensors publishing to Mosquitto over mutual TLS, the readings checked
// on the broker with mosquitto_sub.
func TestArmBinaryUnderQemu(t *testing.T) {
	qemu := os.Getenv("KITD_TEST_QEMU")
	if qemu == "" {
		qemu = "qemu-arm-static"
	}
	for _, tool := range []string{qemu, "mosquitto_sub", "make"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: run scripts/deps.sh (make test does)", tool)
		}
	}
	dir := t.TempDir()
	bin := buildArm(t, dir)
	kitd := func(args ...string) *exec.Cmd { return exec.Command(qemu, append([]string{bin}, args...)...) }

	out, err := kitd("version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "linux/arm") {
		t.Fatalf("kitd version: %v\n%s", err, out)
	}
	t.Logf("%s", bytes.TrimSpace(out))

	broker := mosquittotest.Start(t, mosquittotest.Options{Devices: []string{device}})
	cfg := filepath.Join(dir, "kitd.yaml")
	writeConfig(t, cfg, dir, broker)

	if out, err := kitd("config", "check", "-c", cfg).CombinedOutput(); err != nil {
		t.Fatalf("kitd config check: %v\n%s", err, out)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("device: { id: kit-arm }\nmqtt: { keepalive: -1s }\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = kitd("config", "check", "-c", bad).CombinedOutput()
	if code := exitCode(err); code != 2 || !strings.Contains(string(out), "mqtt.keepalive") {
		t.Fatalf("kitd config check on a bad config: exit %d, want 2 naming mqtt.keepalive:\n%s", code, out)
	}

	sub := subscribe(t, broker, "kits/"+device+"/telemetry")
	run := kitd("run", "-c", cfg)
	var log testkit.LockedBuffer
	run.Stdout, run.Stderr = &log, &log
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- run.Wait() }()
	defer func() {
		if run.ProcessState == nil {
			run.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("kitd run:\n%s", log.String())
		}
	}()

	msgs := sub.receive(t, 5, 3*time.Minute)
	var last int64
	for i, m := range msgs {
		var r struct {
			Device string             `json:"device"`
			Sensor string             `json:"sensor"`
			Seq    int64              `json:"seq"`
			TS     time.Time          `json:"ts"`
			Values map[string]float64 `json:"values"`
		}
		if err := json.Unmarshal([]byte(m), &r); err != nil {
			t.Fatalf("reading %d: %v: %q", i, err, m)
		}
		if r.Device != device || r.Sensor != "sim" || r.TS.IsZero() {
			t.Errorf("reading %d: %q", i, m)
		}
		if _, ok := r.Values["temperature"]; !ok {
			t.Errorf("reading %d has no temperature: %q", i, m)
		}
		if r.Seq <= last {
			t.Errorf("reading %d: seq %d after %d", i, r.Seq, last)
		}
		last = r.Seq
	}

	t.Logf("first reading: %s", msgs[0])
	if err := run.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("kitd run after SIGTERM: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("kitd run did not exit within a minute of SIGTERM")
	}
}

// buildArm builds the armhf package's binary through make, so it carries
// the same flags and version stamp.
func buildArm(t *testing.T, dir string) string {
	t.Helper()
	cmd := exec.Command("make", "-C", "../..", "--no-print-directory", "build", "BIN="+dir)
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm", "GOARM=6")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make build for arm: %v\n%s", err, out)
	}
	bin := filepath.Join(dir, "kitd")
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Machine != elf.EM_ARM || f.Class != elf.ELFCLASS32 {
		t.Fatalf("%s is %s %s, want 32-bit ARM", bin, f.Class, f.Machine)
	}
	return bin
}

func writeConfig(t *testing.T, path, dir string, b *mosquittotest.Broker) {
	t.Helper()
	pair := b.Certs[device]
	cfg := fmt.Sprintf(`device:
  id: %s
mqtt:
  broker: %s
  ca_file: %s
  cert_file: %s
  key_file: %s
buffer:
  dir: %s
  max_bytes: 16MiB
  min_free_bytes: 1MiB
shadow:
  enabled: false
  state_file: %s
sensors:
  - name: sim
    driver: sim
    interval: 200ms
    options: { quantities: [temperature, humidity] }
`, device, b.URL, b.CA.CAFile, pair.CertFile, pair.KeyFile,
		filepath.Join(dir, "buffer"), filepath.Join(dir, "shadow.json"))
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

// observer reads the kit's telemetry with mosquitto_sub, in a persistent
// session: subscribe registers it before the agent starts (so no reading
// slips past), and receive collects what the broker queued for it.
type observer struct {
	args []string
}

func subscribe(t *testing.T, b *mosquittotest.Broker, topic string) *observer {
	t.Helper()
	obs := b.Certs[mosquittotest.Observer]
	o := &observer{args: []string{"-h", "127.0.0.1", "-p", fmt.Sprint(b.Port),
		"--cafile", b.CA.CAFile, "--cert", obs.CertFile, "--key", obs.KeyFile,
		"-i", "smoke-observer", "-c", "-q", "1", "-t", topic}}
	// -E: exit once the broker has acknowledged the subscription.
	if out, err := exec.Command("mosquitto_sub", append(o.args, "-E")...).CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_sub -E: %v\n%s", err, out)
	}
	return o
}

// receive returns n messages, waiting at most timeout.
func (o *observer) receive(t *testing.T, n int, timeout time.Duration) []string {
	t.Helper()
	args := append(o.args, "-C", fmt.Sprint(n), "-W", fmt.Sprint(int(timeout.Seconds())))
	var stderr bytes.Buffer
	cmd := exec.Command("mosquitto_sub", args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err != nil || len(lines) != n {
		t.Fatalf("mosquitto_sub: %v; %d of %d readings within %s\n%s%s", err, len(lines), n, timeout, out, stderr.String())
	}
	return lines
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}
