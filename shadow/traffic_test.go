package shadow

import (
	"context"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/internal/shadowemu"
	"github.com/kitd-dev/kitd/internal/testkit"
)

// fakeNow is the shadow's clock in a test: a day goes by in a loop.
type fakeNow struct{ t time.Time }

func (f *fakeNow) now() time.Time { return f.t }

// reporting is a kit connected to the emulator over the in-process
// broker, its shadow on a fake clock, with the session that reports.
type reporting struct {
	k   *kit
	emu *shadowemu.Emulator
	ss  *session
	clk *fakeNow
	// start is the document's version after the connect report.
	start int64
}

func newReporting(t *testing.T, heartbeat time.Duration) *reporting {
	t.Helper()
	broker := testkit.StartBroker(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	emu, err := shadowemu.Start(ctx, broker.URL, broker.ClientTLS("shadow-service"), "shadow-service", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	k := newKit(t, t.TempDir(), nil) // min_report_interval 1h: the session's own ticker stays out of it
	clk := &fakeNow{t: time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)}
	k.s.now = clk.now
	k.s.cfg.Heartbeat = heartbeat
	if err := k.s.ApplyPersisted(); err != nil {
		t.Fatal(err)
	}
	dial(t, broker.URL, broker.ClientTLS(kitID), kitID, k.s)
	r := &reporting{k: k, emu: emu, clk: clk}
	eventually(t, "the connect report", func() bool {
		d, ok := emu.Document(kitID, "")
		r.start = d.Version
		return ok && d.State.Reported["connected"] == true && k.s.Reported()["connected"] == true
	})
	k.s.mu.Lock()
	r.ss = k.s.cur
	k.s.mu.Unlock()
	return r
}

// tick is one min_report_interval (10 s) going by, after change.
func (r *reporting) tick(t *testing.T, change func(now time.Time, st *State)) {
	t.Helper()
	r.clk.t = r.clk.t.Add(10 * time.Second)
	r.k.live.set(func(st *State) { change(r.clk.t, st) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.ss.report(ctx, false); err != nil {
		t.Fatal(err)
	}
}

// updates is how many updates the service accepted after the connect
// report.
func (r *reporting) updates() int64 {
	d, _ := r.emu.Document(kitID, "")
	return d.Version - r.start
}

// day drives ticks periodic reports (every min_report_interval, 10 s as
// by default) through the session, changing the live state before each
// with change(i, now), and returns how many updates the shadow service
// accepted after the connect report.
func day(t *testing.T, ticks int, heartbeat time.Duration, change func(i int, now time.Time, st *State)) int64 {
	t.Helper()
	r := newReporting(t, heartbeat)
	for i := 1; i <= ticks; i++ {
		r.tick(t, func(now time.Time, st *State) { change(i, now, st) })
	}
	return r.updates()
}

// A firing alert is a real change: reported at the next tick under
// alerts.<name>, and removed (null) at the tick after it resolves, each
// time without waiting for the heartbeat.
func TestActiveAlertsReported(t *testing.T) {
	r := newReporting(t, time.Hour)
	since := time.Date(2026, 11, 21, 0, 0, 5, 0, time.UTC)
	r.tick(t, func(_ time.Time, st *State) {
		st.Alerts = []Alert{{Name: "dry-soil", Sensor: "a", Quantity: "moisture", Threshold: 35, Value: 31.5, Since: since}}
	})
	d, _ := r.emu.Document(kitID, "")
	got := at(d.State.Reported, "alerts", "dry-soil")
	want := map[string]any{"sensor": "a", "quantity": "moisture", "threshold": float64(35), "value": 31.5, "since": "2026-11-21T00:00:05.000Z"}
	if m, ok := got.(map[string]any); !ok || len(m) != len(want) {
		t.Fatalf("reported alerts %v", d.State.Reported["alerts"])
	} else {
		for k, v := range want {
			if m[k] != v {
				t.Errorf("alerts.dry-soil.%s = %v, want %v", k, m[k], v)
			}
		}
	}
	r.tick(t, func(_ time.Time, st *State) { st.Alerts = nil })
	d, _ = r.emu.Document(kitID, "")
	if a, ok := d.State.Reported["alerts"]; ok {
		t.Fatalf("resolved alert still reported: %v", a)
	}
	if n := r.updates(); n != 2 {
		t.Fatalf("%d updates, want 2 (fired, resolved)", n)
	}
}

// Shadow updates per day (every min_report_interval tick is 10 s):
//
//   - idle: one sensor read every minute, delivered at once: only the
//     volatile figures change, so only the hourly heartbeat reports: 24 a
//     day (the connect report aside), where each reading used to cost two
//     (its figures, then pending back to 0): 2,880.
//   - busy: ten sensors every second and a backlog that never empties
//     (volatile figures change on every tick), one sensor failing and
//     recovering four times a day, and an alert firing and resolving twice:
//     the 12 real changes go at once, carrying the volatile figures,
//     and the heartbeat fills the quiet hours (28 measured), where every
//     tick used to report: 8,640.
func TestShadowUpdatesPerDay(t *testing.T) {
	const ticks = 8640 // a day of 10 s ticks
	idleChange := func(i int, now time.Time, st *State) {
		if i%6 == 0 {
			st.Sensors[0].LastReading = now
			st.Buffer.Pending, st.Buffer.Bytes = 1, 120
		} else {
			st.Buffer.Pending, st.Buffer.Bytes = 0, 0
		}
	}
	idle := day(t, ticks, time.Hour, idleChange)
	t.Logf("idle kit: %d shadow updates in a day", idle)
	if idle != 24 {
		t.Errorf("idle kit: %d updates a day, want 24 (one an hour)", idle)
	}

	busy := day(t, ticks, time.Hour, func(i int, now time.Time, st *State) {
		st.Sensors[0].LastReading, st.Sensors[1].LastReading = now, now
		st.Buffer.Pending, st.Buffer.Bytes = int64(5000+i), int64(600000+120*i)
		// A failing spell of an hour, four times a day.
		failing := (i/(ticks/4))*(ticks/4)+90 <= i && i < (i/(ticks/4))*(ticks/4)+90+360
		st.Sensors[0].OK = !failing
		st.Sensors[0].LastError = ""
		if failing {
			st.Sensors[0].LastError = "read: i2c timeout"
		}
		// An alert firing for two hours, twice a day.
		if h := i / 360; h == 5 || h == 6 || h == 17 || h == 18 {
			st.Alerts = []Alert{{Name: "dry-soil", Sensor: "a", Quantity: "moisture", Threshold: 35, Value: 31, Since: now.Truncate(time.Hour)}}
		} else {
			st.Alerts = nil
		}
	})
	t.Logf("busy kit: %d shadow updates in a day", busy)
	// 12 real changes; the heartbeat adds at most one per hour.
	if busy < 12 || busy > 12+24 {
		t.Errorf("busy kit: %d updates a day, want 12..36", busy)
	}

	// Before the heartbeat, every tick with a changed figure reported (a
	// heartbeat of one tick is the old behaviour): an hour of each kit.
	idleBefore := day(t, 360, 10*time.Second, idleChange)
	t.Logf("idle kit without the heartbeat: %d updates in an hour (%d a day)", idleBefore, idleBefore*24)
	if idleBefore != 120 { // a reading's figures, then pending back to 0: twice a minute
		t.Errorf("idle kit without the heartbeat: %d updates in an hour, want 120", idleBefore)
	}
	busyBefore := day(t, 360, 10*time.Second, func(i int, now time.Time, st *State) {
		st.Sensors[0].LastReading = now
		st.Buffer.Pending = int64(i)
	})
	t.Logf("busy kit without the heartbeat: %d updates in an hour (%d a day)", busyBefore, busyBefore*24)
	if busyBefore != 360 {
		t.Errorf("busy kit without the heartbeat: %d updates in an hour, want 360", busyBefore)
	}
}
