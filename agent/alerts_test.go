package agent

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/buffer"
	"github.com/kitd-dev/kitd/config"
	"github.com/kitd-dev/kitd/internal/testkit"
	"github.com/kitd-dev/kitd/telemetry"
)

// bufferedAlerts reads the alert records a stopped agent left in its
// buffer, in seq order.
func bufferedAlerts(t *testing.T, cfg *config.Config) []telemetry.Alert {
	t.Helper()
	b, err := buffer.Open(cfg.Buffer, buffer.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var out []telemetry.Alert
	r := b.Reader(0, 0)
	for {
		recs, err := r.Next(1000, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			return out
		}
		for _, rec := range recs {
			v, err := telemetry.ParseRecord(rec.Data)
			if err != nil {
				t.Fatalf("seq %d: %v", rec.Seq, err)
			}
			if v.IsAlert() {
				a := v.Alert()
				if a.ReadingSeq == 0 || a.ReadingSeq >= rec.Seq {
					t.Errorf("alert at seq %d names reading %d", rec.Seq, a.ReadingSeq)
				}
				out = append(out, a)
			}
		}
	}
}

// An offline kit raises its alert into the buffer at once; a restart
// while the condition still holds raises no second one; a reload that
// moves the threshold resolves it; the state the shadow would report
// follows.
func TestAlertsOfflineRestartAndReload(t *testing.T) {
	path, _ := offlineConfig(t, "100ms")
	text, _ := os.ReadFile(path)
	text = append(text, []byte("alerts:\n  - { name: hot, sensor: sim, quantity: temperature, above: -100, hysteresis: 1, for: 300ms }\n")...)
	os.WriteFile(path, text, 0o600)
	cfg, err := config.Check(path, nil, testRegistry(t))
	if err != nil {
		t.Fatal(err)
	}

	a, _, stop := start(t, path, cfg, Deps{})
	testkit.WaitFor(t, 10*time.Second, "the agent running", func() bool { return a.sched.Load() != nil })
	testkit.WaitFor(t, 10*time.Second, "the alert firing", func() bool { return len(a.activeAlerts()) == 1 })
	if act := a.activeAlerts()[0]; act.Name != "hot" || act.Sensor != "sim" || act.Threshold != -100 {
		t.Fatalf("active %+v", act)
	}
	pending := a.Stats().Pending
	testkit.WaitFor(t, 10*time.Second, "more readings", func() bool { return a.Stats().Pending > pending+5 })
	stop()
	if got := bufferedAlerts(t, cfg); len(got) != 1 || got[0].State != telemetry.AlertFiring || got[0].Name != "hot" {
		t.Fatalf("after the first run: %+v", got)
	}
	if _, err := os.Stat(filepath.Join(cfg.Buffer.Dir, alertStateFile)); err != nil {
		t.Fatal(err)
	}

	a, _, stop = start(t, path, cfg, Deps{})
	// Run opens the buffer and restores the alerts before the sensors start.
	testkit.WaitFor(t, 10*time.Second, "the agent running", func() bool { return a.sched.Load() != nil })
	pending = a.Stats().Pending
	testkit.WaitFor(t, 10*time.Second, "readings after the restart", func() bool { return a.Stats().Pending > pending+10 })
	if len(a.activeAlerts()) != 1 {
		t.Fatal("the firing alert was not restored")
	}
	os.WriteFile(path, bytes.Replace(text, []byte("above: -100"), []byte("above: 1000"), 1), 0o600)
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "the alert resolved", func() bool { return len(a.activeAlerts()) == 0 })
	stop()
	got := bufferedAlerts(t, cfg)
	if len(got) != 2 || got[0].State != telemetry.AlertFiring || got[1].State != telemetry.AlertResolved || got[1].Threshold != 1000 {
		t.Fatalf("buffered alerts %+v, want one firing (no duplicate after the restart) then one resolved", got)
	}
}
