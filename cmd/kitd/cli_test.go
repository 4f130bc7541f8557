package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/internal/pki"
	"github.com/kitd-dev/kitd/internal/testkit"
)

type result struct {
	code           int
	stdout, stderr string
}

func kitd(t *testing.T, stdin io.Reader, environ []string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	code := run(args, stdin, &out, &errb, environ)
	return result{code, out.String(), errb.String()}
}

func TestVersion(t *testing.T) {
	r := kitd(t, nil, nil, "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "kitd ") || !strings.Contains(r.stdout, "linux/") {
		t.Fatalf("%+v", r)
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{{"frobnicate"}, {"run", "--nope"}, {"version", "extra"}, {"demo", "--for", "soon"}, {"demo", "--set", "novalue"}, {"--log-level", "loud", "sensors", "scan"}} {
		if r := kitd(t, nil, nil, args...); r.code != 2 || r.stderr == "" {
			t.Errorf("kitd %v: exit %d, stderr %q; want 2 and a message", args, r.code, r.stderr)
		}
	}
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func validConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	ca, err := pki.NewCA(dir, "ca")
	if err != nil {
		t.Fatal(err)
	}
	p, err := ca.Client("kit-001", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return `device: { id: kit-001 }
mqtt:
  broker: tls://broker.example:8883
  ca_file: ` + ca.CAFile + `
  cert_file: ` + p.CertFile + `
  key_file: ` + p.KeyFile + `
buffer: { dir: ` + filepath.Join(dir, "buffer") + ` }
shadow: { state_file: ` + filepath.Join(dir, "shadow.json") + ` }
sensors:
  - { name: sim, driver: sim, interval: 10s }
`
}

func TestConfigCheck(t *testing.T) {
	good := writeConfig(t, validConfig(t))
	r := kitd(t, nil, nil, "config", "check", "-c", good)
	if r.code != 0 || !strings.Contains(r.stdout, "id: kit-001") || !strings.Contains(r.stdout, "keepalive: 30s") {
		t.Fatalf("good config: %+v", r)
	}
	if strings.Contains(r.stdout, "PRIVATE KEY") {
		t.Fatal("key material printed")
	}

	bad := writeConfig(t, strings.Replace(validConfig(t), "interval: 10s", "interval: 10", 1))
	r = kitd(t, nil, nil, "config", "check", "-c", bad)
	if r.code != 2 || !strings.Contains(r.stderr, "sensors[0] (sim).interval") || r.stdout != "" {
		t.Fatalf("bad config: %+v", r)
	}
	r = kitd(t, nil, nil, "config", "check", "-c", "/nonexistent/kitd.yaml")
	if r.code != 2 || !strings.Contains(r.stderr, "/nonexistent/kitd.yaml") {
		t.Fatalf("missing file: %+v", r)
	}
	// -c defaults to /etc/kitd/config.yaml, named when it is missing.
	if _, err := os.Stat("/etc/kitd/config.yaml"); os.IsNotExist(err) {
		r = kitd(t, nil, nil, "config", "check")
		if r.code != 2 || !strings.Contains(r.stderr, "/etc/kitd/config.yaml") {
			t.Fatalf("default path: %+v", r)
		}
	}
	// Environment overrides reach config check.
	r = kitd(t, nil, []string{"KITD_MQTT_BROKER=ftp://x"}, "config", "check", "-c", good)
	if r.code != 2 || !strings.Contains(r.stderr, "mqtt.broker") {
		t.Fatalf("env override: %+v", r)
	}
}

// config check reports unsafe TLS files by field and file, and returns
// on a FIFO instead of waiting for a writer.
func TestConfigCheckRefusesUnsafeTLSFiles(t *testing.T) {
	body := validConfig(t)
	caFile := regexp.MustCompile(`ca_file: (\S+)`).FindStringSubmatch(body)[1]
	fifo := filepath.Join(t.TempDir(), "ca.pem")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan result, 1)
	go func() {
		done <- kitd(t, nil, nil, "config", "check", "-c", writeConfig(t, strings.Replace(body, caFile, fifo, 1)))
	}()
	select {
	case r := <-done:
		if r.code != 2 || !strings.Contains(r.stderr, "mqtt.ca_file: "+fifo+" is a named pipe (FIFO), not a regular file") {
			t.Fatalf("FIFO as ca_file: %+v", r)
		}
	case <-time.After(time.Minute):
		t.Fatal("config check still blocked on a FIFO after a minute")
	}
	r := kitd(t, nil, nil, "config", "check", "-c", writeConfig(t, strings.Replace(body, caFile, "/dev/zero", 1)))
	if r.code != 2 || !strings.Contains(r.stderr, "mqtt.ca_file: /dev/zero is a character device") {
		t.Fatalf("/dev/zero as ca_file: %+v", r)
	}
	if err := os.Chmod(caFile, 0o664); err != nil {
		t.Fatal(err)
	}
	r = kitd(t, nil, nil, "config", "check", "-c", writeConfig(t, body))
	if r.code != 2 || !strings.Contains(r.stderr, "mqtt.ca_file: "+caFile+" is writable by its group or others (mode 0664)") {
		t.Fatalf("group-writable CA: %+v", r)
	}
}

func TestSensorsScanWithoutBusesIsPlain(t *testing.T) {
	r := kitd(t, nil, nil, "sensors", "scan", "--w1-dir", t.TempDir())
	if r.code != 0 || r.stdout == "" {
		t.Fatalf("%+v", r)
	}
}

func TestSensorsReadPrintsTable(t *testing.T) {
	path := writeConfig(t, validConfig(t))
	r := kitd(t, nil, nil, "sensors", "read", "-c", path)
	if r.code != 0 || !strings.Contains(r.stdout, "sim") || !strings.Contains(r.stdout, "temperature=") {
		t.Fatalf("%+v", r)
	}
}

// A kit that never ran has no buffer directory yet: say so and exit 1
// (nothing to report), naming the directory.
func TestBufferStatsBeforeTheAgentRan(t *testing.T) {
	path := writeConfig(t, validConfig(t))
	r := kitd(t, nil, nil, "buffer", "stats", "-c", path)
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "the agent has not run yet") || !strings.Contains(r.stderr, "no buffer in /") {
		t.Fatalf("%+v", r)
	}
}

// The shipped examples, on a machine that is not a kit: every one passes
// config check --skip-files; sensors read and buffer stats run on them
// without certificates.
func TestShippedExamples(t *testing.T) {
	files, err := filepath.Glob("../../configs/*.yaml")
	if err != nil || len(files) < 3 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, f := range files {
		if r := kitd(t, nil, nil, "config", "check", "--skip-files", "-c", f); r.code != 0 || !strings.Contains(r.stdout, "device:") {
			t.Errorf("config check --skip-files -c %s: %+v", f, r)
		}
		// A config error would exit 2; 0 or 1 (a sensor that is not
		// on this machine) means it read.
		if r := kitd(t, nil, nil, "sensors", "read", "-c", f); r.code == 2 || r.stdout == "" {
			t.Errorf("sensors read -c %s: %+v", f, r)
		}
		if r := kitd(t, nil, nil, "buffer", "stats", "-c", f); r.code == 2 {
			t.Errorf("buffer stats -c %s: %+v", f, r)
		}
	}
	// demo.yaml's sensors are simulated: they read here.
	r := kitd(t, nil, nil, "sensors", "read", "-c", "../../configs/demo.yaml")
	if r.code != 0 || !strings.Contains(r.stdout, "moisture=") {
		t.Errorf("sensors read -c configs/demo.yaml: %+v", r)
	}
	// demo.yaml's relative paths resolve beside it, so its buffer is
	// never the source tree's buffer package.
	r = kitd(t, nil, nil, "config", "check", "--skip-files", "-c", "../../configs/demo.yaml")
	pkg, err := filepath.Abs("../../buffer")
	if err != nil {
		t.Fatal(err)
	}
	if want := "dir: " + filepath.Join(filepath.Dir(pkg), "configs", "buffer") + "\n"; !strings.Contains(r.stdout, want) {
		t.Errorf("demo.yaml's buffer.dir: want %q in\n%s", want, r.stdout)
	}
}

// Without --skip-files a config whose files are missing is refused; with
// it everything else is still checked.
func TestConfigCheckSkipFiles(t *testing.T) {
	demo, err := os.ReadFile("../../configs/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	path := writeConfig(t, string(demo)) // nothing beside it
	r := kitd(t, nil, nil, "config", "check", "-c", path)
	if r.code != 2 || !strings.Contains(r.stderr, "mqtt.ca_file: ") || !strings.Contains(r.stderr, filepath.Join(filepath.Dir(path), "ca.pem")) || r.stdout != "" {
		t.Fatalf("missing files: %+v", r)
	}
	r = kitd(t, nil, []string{"KITD_MQTT_KEEPALIVE=0s"}, "config", "check", "--skip-files", "-c", path)
	if r.code != 2 || !strings.Contains(r.stderr, "mqtt.keepalive: must be positive") || strings.Contains(r.stderr, "ca_file") {
		t.Fatalf("--skip-files with a bad keepalive: %+v", r)
	}
}

// Relative certificate paths work from any working directory.
func TestConfigCheckRelativePaths(t *testing.T) {
	body := validConfig(t)
	ca := regexp.MustCompile(`ca_file: (\S+)`).FindStringSubmatch(body)[1]
	dir := filepath.Dir(filepath.Dir(ca)) // the buffer and the certificates' parent
	path := filepath.Join(dir, "kitd.yaml")
	rel := strings.ReplaceAll(body, dir+"/", "")
	if rel == body {
		t.Fatal("nothing made relative")
	}
	if err := os.WriteFile(path, []byte(rel), 0o600); err != nil {
		t.Fatal(err)
	}
	r := kitd(t, nil, nil, "config", "check", "-c", path)
	if r.code != 0 || !strings.Contains(r.stdout, "ca_file: "+ca+"\n") {
		t.Fatalf("%+v\n%s", r, rel)
	}
}

// sensors read connects to nothing: missing certificates and a broken
// mqtt section do not stop it; a bad sensor does.
func TestSensorsReadNeedsNoCertificates(t *testing.T) {
	body := validConfig(t)
	ca := regexp.MustCompile(`ca_file: (\S+)`).FindStringSubmatch(body)[1]
	body = strings.Replace(body, ca, "/nonexistent/ca.pem", 1)
	body = strings.Replace(body, "  ca_file:", "  keepalive: 0s\n  ca_file:", 1)
	r := kitd(t, nil, nil, "sensors", "read", "-c", writeConfig(t, body))
	if r.code != 0 || !strings.Contains(r.stdout, "temperature=") {
		t.Fatalf("%+v", r)
	}
	r = kitd(t, nil, nil, "sensors", "read", "-c", writeConfig(t, strings.Replace(body, "interval: 10s", "interval: 0s", 1)))
	if r.code != 2 || !strings.Contains(r.stderr, "sensors[0] (sim).interval") || strings.Contains(r.stderr, "mqtt.") {
		t.Fatalf("bad sensor: %+v", r)
	}
}

// run validates the config once, with config check's errors, word for word.
func TestRunRefusesWhatConfigCheckRefuses(t *testing.T) {
	bad := writeConfig(t, strings.Replace(strings.Replace(validConfig(t), "interval: 10s", "interval: 10", 1), "kit-001", "kit/1", 1))
	check := kitd(t, nil, nil, "config", "check", "-c", bad)
	run := kitd(t, nil, nil, "run", "-c", bad)
	if run.code != 2 || run.stderr != check.stderr || !strings.Contains(run.stderr, "device.id") || !strings.Contains(run.stderr, "sensors[0] (sim).interval") {
		t.Fatalf("run: %+v\nconfig check: %+v", run, check)
	}
}

// The README's first command: readings flow (within 5 s on an idle
// machine; the test waits on them, not on a clock), a desired interval set
// from the command line is applied and reported, a line typed on stdin does
// the same, end of input does not end the demo, and Ctrl-C ends it with
// exit 0. --for is TestDemoForEndsIt: a fixed --for here raced these steps
// on a slow machine.
func TestDemo(t *testing.T) {
	pr, pw := io.Pipe()
	var out, errb testkit.LockedBuffer
	done := make(chan int, 1)
	start := time.Now()
	go func() {
		done <- run([]string{"demo", "--set", "sensors.sim.interval=5s"}, pr, &out, &errb, nil)
	}()
	testkit.WaitFor(t, time.Minute, "a reading", func() bool { return strings.Contains(out.String(), "reading  sim") })
	t.Logf("first reading after %v", time.Since(start).Round(time.Millisecond))
	testkit.WaitFor(t, time.Minute, "interval 5s reported", func() bool { return strings.Contains(out.String(), `"interval":"5s"`) })
	io.WriteString(pw, "sensors.soil.enabled=false\n")
	pw.Close() // end of input is not a reason to exit
	testkit.WaitFor(t, time.Minute, "soil disabled", func() bool { return strings.Contains(out.String(), `"enabled":false`) })
	testkit.WaitFor(t, time.Minute, "a status line", func() bool { return strings.Contains(out.String(), "status   connected=true") })
	select {
	case code := <-done:
		t.Fatalf("demo ended (exit %d) before Ctrl-C\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	default:
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("demo still running 30s after SIGINT")
	}
}

// --for ends the demo with exit 0, and not before: not at the end of its
// input either (empty here).
func TestDemoForEndsIt(t *testing.T) {
	var out, errb testkit.LockedBuffer
	done := make(chan int, 1)
	start := time.Now()
	go func() { done <- run([]string{"demo", "--for", "3s"}, strings.NewReader(""), &out, &errb, nil) }()
	select {
	case code := <-done:
		if code != 0 || !strings.Contains(out.String(), "kitd demo: done: ") {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("demo did not end after --for 3s")
	}
	if d := time.Since(start); d < 3*time.Second {
		t.Fatalf("demo ended after %v, before --for 3s", d)
	}
}

// Ctrl-C ends the demo with exit 0 and its summary (what the README
// promises of the kitd binary; `go run` itself exits 1 after an interrupt).
func TestDemoCtrlCExitsZero(t *testing.T) {
	var out, errb testkit.LockedBuffer
	done := make(chan int, 1)
	go func() { done <- run([]string{"demo"}, strings.NewReader(""), &out, &errb, nil) }()
	// The demo's signal handler is in place before its first line.
	testkit.WaitFor(t, 10*time.Second, "a reading", func() bool { return strings.Contains(out.String(), "reading  sim") })
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 || !strings.Contains(out.String(), "kitd demo: done: ") {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("demo still running 30s after SIGINT")
	}
}

// Two sensors that would drive one chip are a config error naming both;
// channels of one ADS1115 are not.
func TestConfigCheckConflicts(t *testing.T) {
	base := validConfig(t)
	ok := writeConfig(t, base+`  - { name: soil-1, driver: ads1115, interval: 1m, options: { bus: /dev/i2c-1, address: 0x48, channel: 0 } }
  - { name: soil-2, driver: ads1115, interval: 1m, options: { bus: /dev/i2c-1, address: 0x48, channel: 1 } }
`)
	if r := kitd(t, nil, nil, "config", "check", "-c", ok); r.code != 0 {
		t.Fatalf("channels of one chip: %+v", r)
	}
	bad := writeConfig(t, base+`  - { name: air, driver: bme280, interval: 1m, options: { bus: /dev/i2c-1, address: 0x76 } }
  - { name: greenhouse, driver: bme280, interval: 1m, options: { bus: /dev/i2c-1, address: 0x76, mux_channel: 3 } }
`)
	r := kitd(t, nil, nil, "config", "check", "-c", bad)
	if r.code != 2 || !strings.Contains(r.stderr, "sensors[2] (greenhouse).options: conflicts with sensors[1] (air)") || !strings.Contains(r.stderr, "pca9548 0x70 channel 3") {
		t.Fatalf("conflict: %+v", r)
	}
	serial := writeConfig(t, base+`  - { name: co2, driver: mhz19, interval: 1m, options: { port: /dev/ttyS0 } }
  - { name: dust, driver: pms5003, interval: 1m, options: { port: /dev/ttyS0 } }
`)
	r = kitd(t, nil, nil, "config", "check", "-c", serial)
	if r.code != 2 || !strings.Contains(r.stderr, "sensors[2] (dust).options: conflicts with sensors[1] (co2)") || !strings.Contains(r.stderr, "serial port /dev/ttyS0") {
		t.Fatalf("two sensors on one serial port: %+v", r)
	}
}

// TestRuntimeDefaults: `kitd run` takes one P and GOGC=25 unless the
// environment names its own; the test puts the process's settings back.
func TestRuntimeDefaults(t *testing.T) {
	procs, gc := runtime.GOMAXPROCS(0), debug.SetGCPercent(100)
	t.Cleanup(func() {
		runtime.GOMAXPROCS(procs)
		debug.SetGCPercent(gc)
	})
	for _, c := range []struct {
		environ       []string
		procs, gcWant int
	}{
		{nil, 1, 25},
		{[]string{"GOMAXPROCS=3", "GOGC=100"}, 3, 100},
	} {
		runtime.GOMAXPROCS(3)
		debug.SetGCPercent(100)
		(&env{environ: c.environ}).runtimeDefaults()
		if p, g := runtime.GOMAXPROCS(0), debug.SetGCPercent(100); p != c.procs || g != c.gcWant {
			t.Errorf("environ %q: GOMAXPROCS %d GOGC %d, want %d and %d", c.environ, p, g, c.procs, c.gcWant)
		}
	}
}
