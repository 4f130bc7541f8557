package telemetry

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func sampleAlert() Alert {
	return Alert{Name: "dry-soil", State: AlertFiring, Sensor: "soil-1", Quantity: "moisture",
		Value: 31.5, Threshold: 35, ReadingSeq: 41,
		Time: time.Date(2026, 11, 21, 12, 0, 0, 123e6, time.UTC), Boot: 7, Mono: 90 * time.Second}
}

// An alert record round-trips, and its message has exactly the fields of
// the wire contract (plus reading_seq), with the record's own seq.
func TestAlertRecordMessage(t *testing.T) {
	a := sampleAlert()
	rec, err := MarshalAlert(nil, a)
	if err != nil {
		t.Fatal(err)
	}
	v, err := ParseRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	if !v.IsAlert() || v.IsGap() {
		t.Fatalf("IsAlert %v IsGap %v", v.IsAlert(), v.IsGap())
	}
	if got := v.Alert(); got != a {
		t.Fatalf("decoded %+v\nwant %+v", got, a)
	}
	msg := AppendRecordMessage(nil, "kit-001", "ep1", 42, &v)
	want := `{"device":"kit-001","epoch":"ep1","alert":"dry-soil","state":"firing","sensor":"soil-1","quantity":"moisture","value":31.5,"threshold":35,"ts":"2026-11-21T12:00:00.123Z","seq":42,"reading_seq":41}`
	if string(msg) != want {
		t.Fatalf("message\n%s\nwant\n%s", msg, want)
	}
	var m map[string]any
	if err := json.Unmarshal(msg, &m); err != nil {
		t.Fatal(err)
	}

	// Unsynced, then re-stamped like a reading.
	a.State, a.Clock = AlertResolved, ClockUnsynced
	rec, _ = MarshalAlert(nil, a)
	v, _ = ParseRecord(rec)
	v.Restamp(time.Date(2026, 11, 21, 13, 0, 0, 0, time.UTC), 100*time.Second, 7)
	msg = AppendRecordMessage(nil, "kit-001", "", 43, &v)
	want = `{"device":"kit-001","alert":"dry-soil","state":"resolved","sensor":"soil-1","quantity":"moisture","value":31.5,"threshold":35,"ts":"2026-11-21T12:59:50.000Z","clock":"corrected","seq":43,"reading_seq":41}`
	if string(msg) != want {
		t.Fatalf("message\n%s\nwant\n%s", msg, want)
	}
}

// Every truncation and a bad state are ErrRecord, never a panic; the
// reading and gap forms are untouched by the new kind.
func TestAlertRecordMalformed(t *testing.T) {
	rec, _ := MarshalAlert(nil, sampleAlert())
	for n := range len(rec) {
		if _, err := ParseRecord(rec[:n]); !errors.Is(err, ErrRecord) {
			t.Fatalf("truncated to %d: %v", n, err)
		}
	}
	long := append(append([]byte(nil), rec...), 0)
	if _, err := ParseRecord(long); !errors.Is(err, ErrRecord) {
		t.Fatalf("trailing byte: %v", err)
	}
	bad := append([]byte(nil), rec...)
	bad[26] = 9
	if _, err := ParseRecord(bad); !errors.Is(err, ErrRecord) {
		t.Fatalf("state 9: %v", err)
	}
	if _, err := MarshalAlert(nil, Alert{Name: "x", State: 0}); err == nil {
		t.Fatal("state 0 marshalled")
	}

	r, _ := MarshalRecord(nil, Reading{Sensor: "s", Time: time.Unix(1, 0), Values: map[string]float64{"t": 1}})
	g := MarshalGap(nil, Gap{From: 1, To: 2, Reason: "full", Time: time.Unix(1, 0)})
	for _, b := range [][]byte{r, g} {
		v, err := ParseRecord(b)
		if err != nil || v.IsAlert() {
			t.Fatalf("version %d: alert %v err %v", b[0], v.IsAlert(), err)
		}
	}
}
