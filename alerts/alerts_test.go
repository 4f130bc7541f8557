package alerts

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/telemetry"
)

func f(v float64) *float64 { return &v }

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// feed is a controlled clock: each reading is at's seconds after t0 on
// both clocks, on boot 1.
type feed struct {
	t    *testing.T
	e    *Evaluator
	seq  uint64
	sent []telemetry.Alert
}

func (fd *feed) at(sec float64, v float64) []telemetry.Alert {
	fd.t.Helper()
	d := time.Duration(sec * float64(time.Second))
	fd.seq++
	r := telemetry.Reading{Sensor: "soil-1", Time: t0.Add(d), Boot: 1, Mono: time.Hour + d,
		Values: map[string]float64{"moisture": v, "temperature": 20}}
	var got []telemetry.Alert
	if err := fd.e.Observe(r, fd.seq, func(a []telemetry.Alert) (uint64, error) {
		got = append(got, a...)
		fd.seq += uint64(len(a))
		return fd.seq - uint64(len(a)) + 1, nil
	}); err != nil {
		fd.t.Fatal(err)
	}
	fd.sent = append(fd.sent, got...)
	return got
}

func states(as []telemetry.Alert) string {
	var s []string
	for _, a := range as {
		s = append(s, a.Name+":"+a.State.String())
	}
	return strings.Join(s, ",")
}

func dry() Rule {
	return Rule{Name: "dry-soil", Sensor: "soil-1", Quantity: "moisture", Below: f(35), Hysteresis: 3, For: 5 * time.Minute}
}

// below 35 for 5 minutes fires once; hovering between 34 and 37 sends
// nothing more; above 38 resolves once; a dip shorter than `for` sends
// nothing.
func TestFiringResolvedHysteresisAndFor(t *testing.T) {
	e, err := New(Config{dry()}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	fd := &feed{t: t, e: e}
	steps := []struct {
		sec  float64
		v    float64
		want string
	}{
		{0, 40, ""},
		{10, 34, ""},    // pending from 10 s
		{200, 36, ""},   // back above 35 before 5 min: cancelled
		{210, 34, ""},   // pending again from 210 s
		{509, 34.9, ""}, // 299 s: not yet
		{510, 34.9, "dry-soil:firing"},
		{520, 35.1, ""}, // hovering: in the band, still firing
		{530, 34.9, ""},
		{540, 37.9, ""},
		{550, 38, ""}, // not above 38
		{560, 38.1, "dry-soil:resolved"},
		{570, 38.1, ""},
		{580, 30, ""}, // pending again
		{880, 30, "dry-soil:firing"},
	}
	for _, s := range steps {
		if got := states(fd.at(s.sec, s.v)); got != s.want {
			t.Fatalf("at %vs value %v: %q, want %q", s.sec, s.v, got, s.want)
		}
	}
	a := fd.sent[0]
	if a.Value != 34.9 || a.Threshold != 35 || a.Sensor != "soil-1" || a.Quantity != "moisture" || a.ReadingSeq != 6 || !a.Time.Equal(t0.Add(510*time.Second)) {
		t.Fatalf("firing alert %+v", a)
	}
	if r := fd.sent[1]; r.Value != 38.1 || r.ReadingSeq != 12 {
		t.Fatalf("resolved alert %+v", r)
	}
	act := e.Active()
	if len(act) != 1 || act[0].Name != "dry-soil" || act[0].Value != 30 || !act[0].Since.Equal(t0.Add(880*time.Second)) {
		t.Fatalf("Active %+v", act)
	}
}

// A value oscillating across the threshold every reading, for a day,
// sends one message, and with repeat one more per repeat period.
func TestNoStormAtThreshold(t *testing.T) {
	r := Rule{Name: "co2-high", Sensor: "soil-1", Quantity: "moisture", Above: f(1000), Hysteresis: 50, Repeat: 6 * time.Hour}
	e, _ := New(Config{r}, "", nil)
	fd := &feed{t: t, e: e}
	for i := range 8640 { // every 10 s for a day
		v := 999.0
		if i%2 == 0 {
			v = 1001
		}
		fd.at(float64(i*10), v)
	}
	// Fired at 0 s, repeated at 6 h, 12 h, 18 h.
	if got := states(fd.sent); got != "co2-high:firing,co2-high:firing,co2-high:firing,co2-high:firing" {
		t.Fatalf("a day hovering at the threshold sent %q", got)
	}
	if got := fd.at(86400, 949); len(got) != 1 || got[0].State != telemetry.AlertResolved {
		t.Fatalf("below threshold - hysteresis: %v", got)
	}
}

// A failing emit (buffer error) changes nothing: the next reading sends
// the transition again.
func TestEmitFailureRetries(t *testing.T) {
	r := dry()
	r.For = 0
	e, _ := New(Config{r}, "", nil)
	rd := telemetry.Reading{Sensor: "soil-1", Time: t0, Mono: time.Hour, Values: map[string]float64{"moisture": 10}}
	boom := errors.New("disk gone")
	if err := e.Observe(rd, 1, func([]telemetry.Alert) (uint64, error) { return 0, boom }); !errors.Is(err, boom) {
		t.Fatalf("Observe = %v", err)
	}
	if len(e.Active()) != 0 {
		t.Fatal("state committed although the alert was not buffered")
	}
	var got []telemetry.Alert
	rd.Mono += time.Second
	_ = e.Observe(rd, 2, func(a []telemetry.Alert) (uint64, error) { got = a; return 100, nil })
	if states(got) != "dry-soil:firing" {
		t.Fatalf("retry sent %q", states(got))
	}
}

// After a restart (a new evaluator on the same state file) a condition
// that still holds sends no second firing, the repeat clock goes on from
// the last message, and the resolved message still comes.
func TestStateAcrossRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alerts.json")
	r := dry()
	r.For, r.Repeat = 0, time.Hour
	e, err := New(Config{r}, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	fd := &feed{t: t, e: e}
	if got := states(fd.at(0, 20)); got != "dry-soil:firing" {
		t.Fatalf("first: %q", got)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o640 {
		t.Fatalf("state file: %v %v", st, err)
	}

	// "kill -9": a new evaluator reads the file; the boot-time clock of
	// the new process is unrelated (a reboot).
	e2, err := New(Config{r}, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if act := e2.Active(); len(act) != 1 || act[0].Value != 20 || !act[0].Since.Equal(t0) {
		t.Fatalf("restored %+v", act)
	}
	obs := func(sec, v float64) string {
		d := time.Duration(sec * float64(time.Second))
		var got []telemetry.Alert
		rd := telemetry.Reading{Sensor: "soil-1", Time: t0.Add(d), Mono: 5*time.Second + d - 1800*time.Second, Values: map[string]float64{"moisture": v}}
		if err := e2.Observe(rd, 9, func(a []telemetry.Alert) (uint64, error) { got = a; return 100, nil }); err != nil {
			t.Fatal(err)
		}
		return states(got)
	}
	if got := obs(1800, 20); got != "" {
		t.Fatalf("still below after restart: %q (a duplicate firing)", got)
	}
	if got := obs(3599, 20); got != "" {
		t.Fatalf("before the hour: %q", got)
	}
	if got := obs(3600, 20); got != "dry-soil:firing" {
		t.Fatalf("repeat an hour after the last message: %q", got)
	}
	if got := obs(3700, 40); got != "dry-soil:resolved" {
		t.Fatalf("resolved after restart: %q", got)
	}
	e3, _ := New(Config{r}, path, nil)
	if len(e3.Active()) != 0 {
		t.Fatal("resolved state not saved")
	}
}

// An unusable state file is an error naming it, beside a working
// evaluator that starts with nothing firing.
func TestBadStateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alerts.json")
	os.WriteFile(path, []byte("{not json"), 0o640)
	e, err := New(Config{dry()}, path, nil)
	if !errors.Is(err, ErrState) || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v", err)
	}
	if e == nil || len(e.Active()) != 0 {
		t.Fatal("no working evaluator")
	}
}

// A reload keeps the state of rules kept by name and drops the others.
func TestSetRulesKeepsState(t *testing.T) {
	r := dry()
	r.For = 0
	other := Rule{Name: "hot", Sensor: "soil-1", Quantity: "temperature", Above: f(10)}
	e, _ := New(Config{r, other}, "", nil)
	fd := &feed{t: t, e: e}
	if got := states(fd.at(0, 20)); got != "dry-soil:firing,hot:firing" {
		t.Fatalf("%q", got)
	}
	r.Hysteresis = 1
	e.SetRules(Config{r})
	if act := e.Active(); len(act) != 1 || act[0].Name != "dry-soil" {
		t.Fatalf("after reload %+v", act)
	}
	if got := states(fd.at(10, 36.5)); got != "dry-soil:resolved" {
		t.Fatalf("new hysteresis: %q", got)
	}
}

func TestValidate(t *testing.T) {
	sensors := []string{"soil-1", "air"}
	good := Config{dry(), {Name: "hot", Sensor: "air", Quantity: "temperature", Above: f(30)}}
	if err := good.Validate(sensors); err != nil {
		t.Fatal(err)
	}
	bad := Config{
		{Name: "dry-soil", Sensor: "soil-2", Quantity: "wetness", Above: f(1), Below: f(2), Hysteresis: -1, For: -time.Second, Repeat: -time.Second},
		{Name: "dry-soil", Sensor: "air", Quantity: "humidity"},
		{Sensor: "air", Quantity: "humidity", Below: f(2)},
	}
	err := bad.Validate(sensors)
	for _, want := range []string{
		`alerts[0] (dry-soil).sensor: "soil-2" is not a configured sensor`,
		`alerts[0] (dry-soil).quantity: "wetness"`,
		`alerts[0] (dry-soil).below: set exactly one of above and below, not both`,
		`alerts[0] (dry-soil).hysteresis:`,
		`alerts[0] (dry-soil).for:`,
		`alerts[0] (dry-soil).repeat:`,
		`alerts[1] (dry-soil).name: also the name of alerts[0]`,
		`alerts[1] (dry-soil).above: set exactly one of above and below`,
		`alerts[2].name: must not be empty`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

// A kill -9 between an alert record's append and the state file's rename
// leaves the buffer ahead of the file: Restore takes the newer records
// (seq above the file's), in order, and ignores older ones.
func TestRestoreFromBuffer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alerts.json")
	r := dry()
	r.For = 0
	e, _ := New(Config{r}, path, nil)
	fd := &feed{t: t, e: e}
	fd.at(0, 20)  // firing: reading 1, alert record 2
	fd.at(10, 40) // resolved: reading 3, alert record 4; saved
	firing := telemetry.Alert{Name: "dry-soil", State: telemetry.AlertFiring, Value: 12, Time: t0.Add(time.Minute)}
	resolved := firing
	resolved.State = telemetry.AlertResolved

	e2, _ := New(Config{r}, path, nil)
	if e2.Restore(2, firing) || len(e2.Active()) != 0 {
		t.Fatal("an alert record older than the state file was applied")
	}
	// The crash: record 9 (firing) made it to the buffer, the file did not.
	if !e2.Restore(9, firing) || len(e2.Active()) != 1 || e2.Active()[0].Value != 12 {
		t.Fatalf("newer firing record not restored: %+v", e2.Active())
	}
	if err := e2.Save(); err != nil {
		t.Fatal(err)
	}
	e3, _ := New(Config{r}, path, nil)
	var got []telemetry.Alert
	rd := telemetry.Reading{Sensor: "soil-1", Time: t0.Add(2 * time.Minute), Mono: time.Minute, Values: map[string]float64{"moisture": 10}}
	_ = e3.Observe(rd, 10, func(a []telemetry.Alert) (uint64, error) { got = a; return 11, nil })
	if len(got) != 0 {
		t.Fatalf("still firing after the restore, yet sent %q", states(got))
	}
	if !e3.Restore(12, resolved) || len(e3.Active()) != 0 {
		t.Fatal("newer resolved record not restored")
	}
}
