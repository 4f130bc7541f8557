//go:build mosquitto

package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/kitd-dev/kitd/internal/mosquittotest"
	"github.com/kitd-dev/kitd/internal/proctest"
	"github.com/kitd-dev/kitd/internal/testkit"
)

// BenchmarkSteadyState runs the kitd binary as a kit runs it (default
// buffer, sync and rate settings, shadow enabled) against mTLS Mosquitto,
// and reports from /proc what the process costs:
//
//	VmHWM-MB    peak resident set over the whole run, start included
//	RSS-MB      resident set at the end, and its parts:
//	anon-MB     heap, stacks, runtime structures
//	file-MB     pages of the binary (code and data) in memory
//	CPU-%       user+system CPU over the measured window, % of one core
//	CPU-us/reading  that CPU divided by the readings the broker got in the
//	            window (not for idle): the cost of one reading's trip from
//	            the sensor through the buffer to the PUBACK
//
// sensors=10 has ten sim sensors at 1 s, sensors=10@100ms ten at 100 ms
// (the per-reading wake-ups dominate there: issue 10); idle has one sim
// sensor at 1 h: connected, the shadow asked for, nothing to read or send. The binary is
// built without -race whatever the test flags, as a kit runs it. One run
// is the measurement (60 s, 15 s with -short) and takes longer than the
// default -benchtime, so `make bench` runs it once; b.N repeats it.
// KITD_BENCH_BINARY names a prebuilt binary to measure instead, so two
// versions can take turns on the same noisy machine.
//
//	go test -run '^$' -bench SteadyState -benchtime=1x ./e2e/
func BenchmarkSteadyState(b *testing.B) {
	bin := os.Getenv("KITD_BENCH_BINARY")
	if bin == "" {
		bin = buildRelease(b)
	}
	window := 60 * time.Second
	if testing.Short() {
		window = 15 * time.Second
	}
	for _, c := range []struct {
		name     string
		sensors  string
		interval time.Duration // of each sensor
		count    int
	}{
		{"sensors=10", simSensors(10, "1s"), time.Second, 10},
		{"sensors=10@100ms", simSensors(10, "100ms"), 100 * time.Millisecond, 10},
		{"idle", simSensors(1, "1h"), time.Hour, 1},
	} {
		b.Run(c.name, func(b *testing.B) {
			br := mosquittotest.Start(b, mosquittotest.Options{Devices: []string{steadyKit}})
			var readings atomic.Int64
			watchTelemetry(b, br, steadyKit, &readings)
			var hwm, rss, anon, file, cpu float64
			var cpuTime time.Duration
			var delivered int
			for i := 0; i < b.N; i++ {
				u := steadyOnce(b, br, &readings, bin, c.sensors, window)
				// Each sensor reads every interval (idle: none in the window).
				want := c.count * int(u.window/c.interval)
				if u.readings < want*9/10 {
					b.Fatalf("the broker got %d readings in %v, want about %d", u.readings, u.window, want)
				}
				hwm, rss = max(hwm, u.hwmMB), max(rss, u.rssMB)
				anon, file = max(anon, u.anonMB), max(file, u.fileMB)
				cpu += u.cpuPct
				cpuTime += u.cpu
				delivered += u.readings
			}
			b.ReportMetric(hwm, "VmHWM-MB")
			b.ReportMetric(rss, "RSS-MB")
			b.ReportMetric(anon, "anon-MB")
			b.ReportMetric(file, "file-MB")
			b.ReportMetric(cpu/float64(b.N), "CPU-%")
			if c.interval < time.Hour {
				b.ReportMetric(float64(cpuTime.Microseconds())/float64(delivered), "CPU-us/reading")
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}

// steadyUse is what one run measured.
type steadyUse struct {
	hwmMB, rssMB, anonMB, fileMB, cpuPct float64
	cpu, window                          time.Duration
	readings                             int
}

// steadyKit is the device id of the kit under measurement.
const steadyKit = "kit-steady"

// steadyOnce starts kitd, lets it settle (connected, first readings
// delivered), then measures its CPU over window and its memory at the end.
// readings counts what the broker delivers to the observer. The whole run
// is the benchmark's op: it is what one measurement costs.
func steadyOnce(b *testing.B, br *mosquittotest.Broker, readings *atomic.Int64, bin, sensors string, window time.Duration) steadyUse {
	const id = steadyKit
	n00 := readings.Load()
	dir := b.TempDir()
	pair := br.Certs[id]
	cfg := fmt.Sprintf(`device:
  id: %s
mqtt:
  broker: %s
  ca_file: %s
  cert_file: %s
  key_file: %s
buffer:
  dir: %s
  min_free_bytes: 1MiB
shadow:
  enabled: true
  state_file: %s
sensors:
%s`, id, br.URL, br.CA.CAFile, pair.CertFile, pair.KeyFile, filepath.Join(dir, "buffer"), filepath.Join(dir, "shadow.json"), sensors)
	cfgFile := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}

	stderr := &testkit.LockedBuffer{}
	cmd := exec.Command(bin, "run", "-c", cfgFile)
	cmd.Stderr = stderr
	// Should the benchmark die (a -timeout panic runs no defers), kitd
	// goes with it rather than publishing on.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	pid := cmd.Process.Pid

	// Settle: connected and delivering (the first readings are taken at
	// start), startup's allocations behind it.
	deadline := time.Now().Add(20 * time.Second)
	for readings.Load() == n00 {
		select {
		case err := <-exited:
			b.Fatalf("kitd exited: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			b.Fatalf("no reading reached the broker in 20 s:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)

	cpu0, t0, n0 := procCPU(b, pid), time.Now(), readings.Load()
	select {
	case err := <-exited:
		b.Fatalf("kitd exited during the run: %v\n%s", err, stderr.String())
	case <-time.After(window):
	}
	cpu1, elapsed, n1 := procCPU(b, pid), time.Since(t0), readings.Load()
	st := procStatus(b, pid)
	return steadyUse{
		hwmMB:    float64(st["VmHWM"]) / 1024,
		rssMB:    float64(st["VmRSS"]) / 1024,
		anonMB:   float64(st["RssAnon"]) / 1024,
		fileMB:   float64(st["RssFile"]) / 1024,
		cpuPct:   100 * (cpu1 - cpu0).Seconds() / elapsed.Seconds(),
		cpu:      cpu1 - cpu0,
		window:   elapsed,
		readings: int(n1 - n0),
	}
}

// buildRelease builds kitd as `make cross` builds the binaries kits run
// (static, stripped, without the demo's broker: RELEASE_TAGS), never with
// -race: the race detector's shadow memory would be most of the RSS.
func buildRelease(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "kitd")
	cmd := exec.Command("go", "build", "-trimpath", "-tags", "kitd_nodemo", "-ldflags", "-s -w", "-o", bin, "../cmd/kitd")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("building kitd: %v\n%s", err, out)
	}
	return bin
}

// watchTelemetry counts the readings that reach the broker on id's
// telemetry topic.
func watchTelemetry(b *testing.B, br *mosquittotest.Broker, id string, n *atomic.Int64) {
	tlsCfg, err := br.CA.ClientTLS(br.Certs[mosquittotest.Observer])
	if err != nil {
		b.Fatal(err)
	}
	opts := mqtt.NewClientOptions().AddBroker(br.URL).SetClientID("steady-observer").SetTLSConfig(tlsCfg).
		SetCleanSession(true).SetOrderMatters(false)
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatalf("observer connect: %v", tok.Error())
	}
	b.Cleanup(func() { c.Disconnect(100) })
	topic := "kits/" + id + "/telemetry"
	tok := c.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) {
		// One reading per message at the default batch of 1; count
		// batches' readings too, should the default change.
		if k := bytes.Count(m.Payload(), []byte(`"seq":`)); k > 0 {
			n.Add(int64(k))
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatalf("subscribe %s: %v", topic, tok.Error())
	}
}

func procCPU(b *testing.B, pid int) time.Duration {
	d, err := proctest.CPU(pid)
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// procStatus returns the kB figures of /proc/PID/status (VmHWM, VmRSS, ...).
func procStatus(b *testing.B, pid int) map[string]int64 {
	b.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	out := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 2 && fields[1] == "kB" {
			if n, err := strconv.ParseInt(fields[0], 10, 64); err == nil {
				out[k] = n
			}
		}
	}
	if out["VmHWM"] == 0 || out["VmRSS"] == 0 {
		b.Fatalf("no VmHWM/VmRSS in /proc/%d/status", pid)
	}
	return out
}
