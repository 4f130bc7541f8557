package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/kitd-dev/kitd/clock"
	"github.com/kitd-dev/kitd/config"
	"github.com/kitd-dev/kitd/internal/jobsemu"
	"github.com/kitd-dev/kitd/internal/testkit"
)

const jobKit = "kit-jobs"

// jobRig is the in-process broker over mutual TLS with the Jobs
// emulator, and what the broker saw on the kit's telemetry topic.
type jobRig struct {
	t      *testing.T
	broker *testkit.Broker
	emu    *jobsemu.Emulator
	dir    string

	mu   sync.Mutex
	seen map[uint64]int // telemetry seq -> times received
}

func newJobRig(t *testing.T) *jobRig {
	t.Helper()
	b := testkit.StartBroker(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	emu, err := jobsemu.Start(ctx, b.URL, b.ClientTLS("jobs-service"), "jobs-service", jobsemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	r := &jobRig{t: t, broker: b, emu: emu, dir: t.TempDir(), seen: map[uint64]int{}}
	if err := b.Server.Subscribe("kits/+/telemetry", 1, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		r.observe(pk.Payload)
	}); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *jobRig) observe(payload []byte) {
	var m struct {
		Seq      *uint64 `json:"seq"`
		Readings []struct {
			Seq uint64 `json:"seq"`
		} `json:"readings"`
	}
	if json.Unmarshal(payload, &m) != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if m.Seq != nil {
		r.seen[*m.Seq]++
	}
	for _, x := range m.Readings {
		r.seen[x.Seq]++
	}
}

func (r *jobRig) times(seq uint64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen[seq]
}

// config writes the kit's config: sim sensors at interval, 4 KiB segments
// so acknowledged records leave the disk soon.
func (r *jobRig) config(interval string) (string, *config.Config) {
	t := r.t
	pair := r.broker.Client(jobKit)
	yaml := fmt.Sprintf(`device: { id: %s }
mqtt: { broker: %q, ca_file: %s, cert_file: %s, key_file: %s, max_publish_rate: 0, shutdown_timeout: 2s }
buffer: { dir: %s, max_bytes: 16MiB, min_free_bytes: 0, segment_bytes: 4KiB, sync_interval: 100ms }
shadow: { enabled: false, state_file: %s }
jobs: { state_file: %s }
sensors:
  - { name: sim, driver: sim, interval: %s }
  - { name: soil, driver: sim, interval: %s, options: { quantities: [moisture] } }
`, jobKit, r.broker.URL, r.broker.CA.CAFile, pair.CertFile, pair.KeyFile,
		filepath.Join(r.dir, "buffer"), filepath.Join(r.dir, "shadow.json"), filepath.Join(r.dir, "jobs.json"), interval, interval)
	path := filepath.Join(r.dir, "config.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Check(path, nil, testRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	return path, cfg
}

func (r *jobRig) queue(id, doc string) {
	r.t.Helper()
	if err := r.emu.Queue(jobKit, id, []byte(doc)); err != nil {
		r.t.Fatal(err)
	}
}

func (r *jobRig) wait(id, status string) map[string]string {
	r.t.Helper()
	testkit.WaitFor(r.t, 60*time.Second, id+" "+status, func() bool { return r.emu.Status(jobKit, id) == status })
	return r.emu.Execution(jobKit, id).StatusDetails
}

// kitd.read-now reads every sensor at once and publishes the readings;
// SUCCEEDED names their seqs, which reach the broker. A sensor name that
// does not exist is REJECTED; an unknown operation too, listing the known.
func TestJobReadNow(t *testing.T) {
	r := newJobRig(t)
	path, cfg := r.config("1h")
	start(t, path, cfg, Deps{})
	r.queue("read", `{"operation":"kitd.read-now"}`)
	d := r.wait("read", "SUCCEEDED")
	if d["read"] != "2" {
		t.Fatalf("details %v", d)
	}
	for _, f := range strings.Fields(d["seqs"]) {
		name, s, _ := strings.Cut(f, ":")
		seq, err := strconv.ParseUint(s, 10, 64)
		if err != nil || (name != "sim" && name != "soil") {
			t.Fatalf("seqs %q", d["seqs"])
		}
		testkit.WaitFor(t, 30*time.Second, "seq "+s+" delivered", func() bool { return r.times(seq) > 0 })
	}
	r.queue("read-one", `{"operation":"kitd.read-now","sensors":["soil"]}`)
	if d := r.wait("read-one", "SUCCEEDED"); !strings.HasPrefix(d["seqs"], "soil:") || d["read"] != "1" {
		t.Errorf("read-one: %v", d)
	}
	r.queue("read-bad", `{"operation":"kitd.read-now","sensors":["nope"]}`)
	if d := r.wait("read-bad", "REJECTED"); !strings.Contains(d["reason"], `unknown sensor "nope"`) {
		t.Errorf("read-bad: %v", d)
	}
	r.queue("typo", `{"operation":"kitd.read-now","sensor":["soil"]}`)
	if d := r.wait("typo", "REJECTED"); !strings.Contains(d["reason"], `unknown field "sensor"`) {
		t.Errorf("typo: %v", d)
	}
	r.queue("unknown", `{"operation":"kitd.reboot"}`)
	if d := r.wait("unknown", "REJECTED"); d["known"] != "kitd.read-now,kitd.resend,kitd.restart,kitd.set-config,kitd.update" {
		t.Errorf("unknown: %v", d)
	}
}

// kitd.resend delivers a range again while it is on disk; once the
// oldest segments are deleted it says which part is gone.
func TestJobResend(t *testing.T) {
	r := newJobRig(t)
	path, cfg := r.config("100ms")
	a, _, _ := start(t, path, cfg, Deps{})
	testkit.WaitFor(t, 60*time.Second, "seqs 1-20 delivered", func() bool {
		for s := uint64(1); s <= 20; s++ {
			if r.times(s) == 0 {
				return false
			}
		}
		return true
	})
	// A recent range: still on disk (the tail segment is never deleted).
	next := a.buf.Load().NextSeq()
	from, to := next-6, next-2
	r.queue("recent", fmt.Sprintf(`{"operation":"kitd.resend","from":%d,"to":%d}`, from, to))
	d := r.wait("recent", "SUCCEEDED")
	if d["resent"] != "5" || d["ranges"] != fmt.Sprintf("%d-%d", from, to) {
		t.Fatalf("recent: %v", d)
	}
	for s := from; s <= to; s++ {
		testkit.WaitFor(t, 30*time.Second, fmt.Sprintf("seq %d twice", s), func() bool { return r.times(s) >= 2 })
	}
	// The first segment goes once all of it is acknowledged.
	first := filepath.Join(cfg.Buffer.Dir, fmt.Sprintf("%020d.seg", 1))
	testkit.WaitFor(t, 60*time.Second, "the first segment deleted", func() bool {
		_, err := os.Stat(first)
		return errors.Is(err, os.ErrNotExist)
	})
	top := a.buf.Load().NextSeq() - 1
	r.queue("old", fmt.Sprintf(`{"operation":"kitd.resend","from":1,"to":%d}`, top))
	d = r.wait("old", "FAILED")
	// Gone from 1; what is still on disk (at least the tail segment) up
	// to the top resent.
	rs := strings.Split(d["ranges"], "-")
	if !strings.HasPrefix(d["gone"], "1-") || rs[len(rs)-1] != strconv.FormatUint(top, 10) {
		t.Fatalf("old: %v", d)
	}
	r.queue("epoch", `{"operation":"kitd.resend","from":1,"to":2,"epoch":"0000000000000000"}`)
	if d := r.wait("epoch", "FAILED"); !strings.Contains(d["reason"], "epoch") {
		t.Errorf("epoch: %v", d)
	}
	r.queue("backwards", `{"operation":"kitd.resend","from":5,"to":2}`)
	r.wait("backwards", "REJECTED")
}

// kitd.set-config applies the shadow's keys all or nothing.
func TestJobSetConfig(t *testing.T) {
	r := newJobRig(t)
	path, cfg := r.config("1h")
	a, _, _ := start(t, path, cfg, Deps{})
	r.queue("good", `{"operation":"kitd.set-config","desired":{"sensors":{"sim":{"interval":"5s"},"soil":{"enabled":false}},"mqtt":{"batch":{"max_readings":5}}}}`)
	d := r.wait("good", "SUCCEEDED")
	if d["applied"] != "mqtt.batch.max_readings,sensors.sim.interval,sensors.soil.enabled" {
		t.Errorf("good: %v", d)
	}
	h := a.sched.Load().v.Health()
	if h[0].Interval != 5*time.Second || h[1].Enabled || a.pub.Load().v.BatchMaxReadings() != 5 {
		t.Fatalf("not applied: %+v batch %d", h, a.pub.Load().v.BatchMaxReadings())
	}
	r.queue("bad", `{"operation":"kitd.set-config","desired":{"sensors":{"sim":{"interval":"1ms"},"soil":{"enabled":true},"nope":{"enabled":true}}}}`)
	d = r.wait("bad", "FAILED")
	if d["sensors:sim:interval"] == "" || d["sensors:nope"] == "" || d["sensors:soil:enabled"] != "" {
		t.Errorf("bad: %v", d)
	}
	h = a.sched.Load().v.Health()
	if h[0].Interval != 5*time.Second || h[1].Enabled {
		t.Fatalf("an invalid document changed something: %+v", h)
	}
	r.queue("empty", `{"operation":"kitd.set-config"}`)
	r.wait("empty", "REJECTED")
}

// kitd.set-config settings survive a restart and a reload: they are kept
// in jobs.state_file and applied over the config file at start; one that
// no longer fits (a sensor removed from the file) is dropped, the others
// stay.
func TestJobSetConfigPersists(t *testing.T) {
	r := newJobRig(t)
	path, cfg := r.config("1h")
	_, _, stop := start(t, path, cfg, Deps{})
	r.queue("set", `{"operation":"kitd.set-config","desired":{"sensors":{"sim":{"interval":"5s"},"soil":{"interval":"7s"}}}}`)
	if d := r.wait("set", "SUCCEEDED"); d["not_persisted"] != "" {
		t.Fatalf("details %v", d)
	}
	stop()

	a, _, _ := start(t, path, cfg, Deps{})
	testkit.WaitFor(t, 30*time.Second, "the kept settings applied at start", func() bool {
		c := a.sched.Load()
		if c == nil {
			return false // Run has not started the sensors yet
		}
		h := c.v.Health()
		return h[0].Interval == 5*time.Second && h[1].Interval == 7*time.Second
	})
	// The file loses the soil sensor: its setting goes, sim's stays.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(b), "  - { name: soil")
	if err := os.WriteFile(path, b[:i], 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	h := a.sched.Load().v.Health()
	if len(h) != 1 || h[0].Interval != 5*time.Second {
		t.Fatalf("after a reload without soil: %+v", h)
	}
	kept, err := os.ReadFile(cfg.Jobs.StateFile)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(kept), "soil") || !strings.Contains(string(kept), `"interval": "5s"`) {
		t.Errorf("settings file after the reload:\n%s", kept)
	}
}

// kitd.restart: Run stops cleanly and returns ErrRestart with the
// execution IN_PROGRESS; the next agent on the same config reports it
// SUCCEEDED once connected.
func TestJobRestartInProcess(t *testing.T) {
	r := newJobRig(t)
	path, cfg := r.config("1s")
	a, err := New(cfg, Deps{ConfigFile: path, Registry: testRegistry(t), Clock: clock.New(cfg.Clock)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(context.Background()) }()
	r.queue("restart", `{"operation":"kitd.restart"}`)
	select {
	case err := <-done:
		if !errors.Is(err, ErrRestart) {
			t.Fatalf("Run: %v, want ErrRestart", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Run did not return for the restart")
	}
	if x := r.emu.Execution(jobKit, "restart"); x.Status != "IN_PROGRESS" || x.StatusDetails["phase"] != "restarting" {
		t.Fatalf("after the stop: %+v", x)
	}
	start(t, path, cfg, Deps{})
	d := r.wait("restart", "SUCCEEDED")
	if d["restarted"] != "true" || d["restart_requested_at"] == "" {
		t.Errorf("details %v", d)
	}
}

// Offline the jobs client does not run and nothing waits for it: with
// jobs on (the default) and the broker down, the sensors go on filling
// the buffer and the stop is clean.
func TestJobsOfflineCollectionGoesOn(t *testing.T) {
	path, cfg := offlineConfig(t, "100ms")
	if !cfg.Jobs.Enabled {
		t.Fatal("jobs.enabled is not on by default")
	}
	a, _, stop := start(t, path, cfg, Deps{})
	testkit.WaitFor(t, 30*time.Second, "20 readings kept offline", func() bool { return a.Stats().Pending >= 20 })
	if a.jobs == nil {
		t.Fatal("no jobs client")
	}
	if b := a.jobs.Busy(); b != "" {
		t.Fatalf("a job %q is running offline", b)
	}
	stop()
}
