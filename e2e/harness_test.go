//go:build mosquitto

package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/kitd-dev/kitd/buffer"
	"github.com/kitd-dev/kitd/internal/mosquittotest"
	"github.com/kitd-dev/kitd/internal/testkit"
)

var kitdBin string

func TestMain(m *testing.M) {
	if os.Getenv("KITD_TEST_EMULATED") != "" {
		// Under qemu-user the test binary is ARM and cannot exec an ARM
		// kitd without binfmt; the ARM binary is exercised by `make
		// smoke-arm` instead, and these tests by the native run.
		fmt.Println("e2e: native run only (KITD_TEST_EMULATED set)")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "kitd-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	kitdBin = filepath.Join(dir, "kitd")
	args := []string{"build", "-o", kitdBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "../cmd/kitd")...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building kitd:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// kit is one device: its config, its state directory, its process.
type kit struct {
	t      *testing.T
	id     string
	dir    string
	cfg    string
	broker *mosquittotest.Broker

	mu     sync.Mutex
	cmd    *exec.Cmd
	log    *bytes.Buffer
	starts []uint64 // next_seq logged at each start
	exited chan struct{}
}

type kitOptions struct {
	sensors   string // YAML sensors list
	extraMQTT string // extra lines under mqtt:
	shadow    bool
	sync      string
	certFile  string // override the client certificate
	keyFile   string
	keepalive string
	buffer    string // extra lines under buffer: (replacing max_bytes and min_free_bytes when they name them)
	brokerURL string // instead of the broker's own (a proxy in front of it)
}

func newKit(t *testing.T, b *mosquittotest.Broker, id string, o kitOptions) *kit {
	t.Helper()
	k := &kit{t: t, id: id, dir: t.TempDir(), broker: b}
	if o.sensors == "" {
		o.sensors = simSensors(3, "100ms")
	}
	if o.keepalive == "" {
		o.keepalive = "10s"
	}
	if o.sync == "" {
		o.sync = "interval"
	}
	if o.buffer == "" {
		o.buffer = "  max_bytes: 64MiB\n  min_free_bytes: 1MiB\n"
	}
	if o.brokerURL == "" {
		o.brokerURL = b.URL
	}
	pair := b.Certs[id]
	if o.certFile != "" {
		pair.CertFile, pair.KeyFile = o.certFile, o.keyFile
	}
	cfg := fmt.Sprintf(`device:
  id: %s
mqtt:
  broker: %s
  ca_file: %s
  cert_file: %s
  key_file: %s
  keepalive: %s
  max_inflight: 10
  max_publish_rate: 0
%s
buffer:
  dir: %s
%s  sync: %s
  sync_interval: 1s
shadow:
  enabled: %t
  state_file: %s
  min_report_interval: 1s
sensors:
%s`, id, o.brokerURL, b.CA.CAFile, pair.CertFile, pair.KeyFile, o.keepalive, o.extraMQTT,
		filepath.Join(k.dir, "buffer"), o.buffer, o.sync, o.shadow, filepath.Join(k.dir, "shadow.json"), o.sensors)
	k.cfg = filepath.Join(k.dir, "config.yaml")
	if err := os.WriteFile(k.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		k.kill()
		if t.Failed() {
			t.Logf("kitd log:\n%s", k.logText())
		}
	})
	return k
}

func simSensors(n int, interval string) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  - name: sim-%d\n    driver: sim\n    interval: %s\n    options: { quantities: [temperature, humidity] }\n", i, interval)
	}
	return b.String()
}

func (k *kit) start() {
	k.t.Helper()
	cmd := exec.Command(kitdBin, "run", "-c", k.cfg, "--log-level", "debug")
	cmd.Env = append(os.Environ(), "GORACE=halt_on_error=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		k.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		k.t.Fatal(err)
	}
	exited := make(chan struct{})
	started := make(chan struct{})
	k.mu.Lock()
	if k.log == nil {
		k.log = &bytes.Buffer{}
	}
	k.cmd, k.exited = cmd, exited
	k.mu.Unlock()
	go func() {
		defer close(exited)
		var once sync.Once
		defer once.Do(func() { close(started) })
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			line := sc.Text()
			k.mu.Lock()
			k.log.WriteString(line + "\n")
			if strings.Contains(line, "buffer open") {
				var next uint64
				if i := strings.Index(line, "next_seq="); i >= 0 {
					fmt.Sscanf(line[i:], "next_seq=%d", &next)
				}
				k.starts = append(k.starts, next)
				once.Do(func() { close(started) })
			}
			k.mu.Unlock()
		}
	}()
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		k.t.Fatalf("kitd did not open its buffer:\n%s", k.logText())
	}
}

func (k *kit) logText() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.log == nil {
		return ""
	}
	return k.log.String()
}

func (k *kit) signal(sig syscall.Signal) {
	k.mu.Lock()
	cmd := k.cmd
	k.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Signal(sig)
	}
}

// wait waits for the process to exit and returns its exit code.
func (k *kit) wait(limit time.Duration) int {
	k.t.Helper()
	k.mu.Lock()
	cmd, exited := k.cmd, k.exited
	k.mu.Unlock()
	if cmd == nil {
		return -1
	}
	done := make(chan error, 1)
	go func() { <-exited; done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(limit):
		_ = cmd.Process.Kill()
		<-done
		k.t.Fatalf("kitd did not exit within %v:\n%s", limit, k.logText())
	}
	k.mu.Lock()
	k.cmd = nil
	k.mu.Unlock()
	return cmd.ProcessState.ExitCode()
}

// pid is the running kitd's process id, 0 if none runs.
func (k *kit) pid() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cmd == nil || k.cmd.Process == nil {
		return 0
	}
	return k.cmd.Process.Pid
}

// kill is kill -9: no flush, no goodbye.
func (k *kit) kill() {
	k.signal(syscall.SIGKILL)
	k.wait(10 * time.Second)
}

// stop is the service stopping: SIGTERM, and kitd must exit 0 within its
// 5 s flush budget plus slack.
func (k *kit) stop() {
	k.t.Helper()
	k.signal(syscall.SIGTERM)
	if code := k.wait(15 * time.Second); code != 0 {
		k.t.Fatalf("kitd exited %d after SIGTERM:\n%s", code, k.logText())
	}
}

// bufferDir is where the kit's buffer lives.
func (k *kit) bufferDir() string { return filepath.Join(k.dir, "buffer") }

func (k *kit) bufferStats() buffer.Stats {
	k.t.Helper()
	cfg := buffer.DefaultConfig()
	cfg.Dir = filepath.Join(k.dir, "buffer")
	st, err := buffer.ReadStats(cfg)
	if err != nil {
		k.t.Fatal(err)
	}
	return st
}

// observer subscribes as the broker's observer identity and records every
// telemetry reading by seq and every status message.
type observer struct {
	t      *testing.T
	client mqtt.Client

	mu       sync.Mutex
	seqs     map[uint64]int
	arrivals []arrival
	status   []string
	gaps     []string // "from-to reason" of each gap record
}

type arrival struct {
	at  time.Time
	seq uint64
}

func newObserver(t *testing.T, b *mosquittotest.Broker) *observer {
	t.Helper()
	o := &observer{t: t, seqs: map[uint64]int{}}
	tlsCfg, err := b.CA.ClientTLS(b.Certs[mosquittotest.Observer])
	if err != nil {
		t.Fatal(err)
	}
	opts := mqtt.NewClientOptions().AddBroker(b.URL).SetClientID("observer-" + t.Name()).
		SetTLSConfig(tlsCfg).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(200 * time.Millisecond).SetMaxReconnectInterval(time.Second).
		SetOrderMatters(false).SetCleanSession(true)
	opts.SetOnConnectHandler(func(c mqtt.Client) {
		// Resubscribe on every connect: the broker restarts in some tests.
		go c.Subscribe("kits/#", 1, o.handle)
	})
	o.client = mqtt.NewClient(opts)
	if tok := o.client.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("observer connect: %v", tok.Error())
	}
	t.Cleanup(func() { o.client.Disconnect(100) })
	// The subscription is made in a goroutine; wait until it is active by
	// seeing our own probe come back.
	testkit.WaitFor(t, 10*time.Second, "observer subscription", func() bool {
		o.client.Publish("kits/observer-probe/status", 1, false, `{"probe":true}`).WaitTimeout(time.Second)
		o.mu.Lock()
		defer o.mu.Unlock()
		for _, s := range o.status {
			if strings.Contains(s, "probe") {
				return true
			}
		}
		return false
	})
	return o
}

type wireReading struct {
	Device   string             `json:"device"`
	Epoch    string             `json:"epoch"`
	Sensor   string             `json:"sensor"`
	Seq      uint64             `json:"seq"`
	TS       string             `json:"ts"`
	Clock    string             `json:"clock"`
	Values   map[string]float64 `json:"values"`
	Readings []wireReading      `json:"readings"`
	Gap      *struct {
		From, To uint64
		Reason   string
	} `json:"gap"`
}

func (o *observer) handle(_ mqtt.Client, m mqtt.Message) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if strings.HasSuffix(m.Topic(), "/status") {
		o.status = append(o.status, m.Topic()+" "+string(m.Payload()))
		return
	}
	var w wireReading
	if err := json.Unmarshal(m.Payload(), &w); err != nil {
		o.t.Errorf("telemetry on %s is not JSON: %v: %s", m.Topic(), err, m.Payload())
		return
	}
	rs := w.Readings
	if rs == nil {
		rs = []wireReading{w}
	}
	now := time.Now()
	for _, r := range rs {
		if r.Gap != nil {
			// A gap record explains seqs that will never come; it is
			// not a reading.
			if r.Seq == 0 || r.Gap.From == 0 || r.Gap.To < r.Gap.From || r.Gap.Reason == "" {
				o.t.Errorf("gap record misses a wire-contract field: %s", m.Payload())
			}
			o.gaps = append(o.gaps, fmt.Sprintf("%d-%d %s", r.Gap.From, r.Gap.To, r.Gap.Reason))
			o.seqs[r.Seq]++ // delivered: its own seq is accounted for
			continue
		}
		if r.Sensor == "" || r.TS == "" || len(r.Values) == 0 || r.Seq == 0 {
			o.t.Errorf("reading misses a wire-contract field: %s", m.Payload())
		}
		if _, err := time.Parse("2006-01-02T15:04:05.000Z", r.TS); err != nil {
			o.t.Errorf("ts %q is not RFC 3339 UTC with milliseconds", r.TS)
		}
		o.seqs[r.Seq]++
		o.arrivals = append(o.arrivals, arrival{at: now, seq: r.Seq})
	}
}

// gapReasons counts the gap records received by reason.
func (o *observer) gapReasons() map[string]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := map[string]int{}
	for _, g := range o.gaps {
		n[g[strings.LastIndex(g, " ")+1:]]++
	}
	return n
}

// unexplained returns the seqs below the highest one received that neither
// arrived nor are covered by a gap record: what a consumer could not explain.
func (o *observer) unexplained() []uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	covered := map[uint64]bool{}
	for _, g := range o.gaps {
		var from, to uint64
		fmt.Sscanf(g, "%d-%d", &from, &to)
		for s := from; s <= to; s++ {
			covered[s] = true
		}
	}
	var high uint64
	for s := range o.seqs {
		high = max(high, s)
	}
	var out []uint64
	for s := uint64(1); s < high; s++ {
		if o.seqs[s] == 0 && !covered[s] {
			out = append(out, s)
		}
	}
	return out
}

func (o *observer) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.seqs)
}

func (o *observer) has(seq uint64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.seqs[seq] > 0
}

// duplicates counts readings received more than once.
func (o *observer) duplicates() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	d := 0
	for _, n := range o.seqs {
		d += n - 1
	}
	return d
}

// receivedBetween counts distinct readings that arrived in [from, to].
func (o *observer) receivedBetween(from, to time.Time) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	seen := map[uint64]bool{}
	for _, a := range o.arrivals {
		if !a.at.Before(from) && !a.at.After(to) {
			seen[a.seq] = true
		}
	}
	return len(seen)
}

func (o *observer) statuses() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.status...)
}

// missing lists the seqs in [lo, hi] never received.
func (o *observer) missing(lo, hi uint64) []uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []uint64
	for s := lo; s <= hi; s++ {
		if o.seqs[s] == 0 {
			out = append(out, s)
		}
	}
	return out
}

// assertExplained waits (briefly: what kitd sent may still be on its way
// to the observer) until every seq below the highest received is delivered
// or covered by a gap record, and fails naming the first that are not.
func assertExplained(t *testing.T, o *observer) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		u := o.unexplained()
		if len(u) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d seqs neither delivered nor explained by a gap record, first %v (gap records: %v)", len(u), u[:min(len(u), 20)], o.gapReasons())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
