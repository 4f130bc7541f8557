package telemetry

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"
)

var sample = Reading{
	Sensor: "soil-1",
	Time:   time.Date(2026, 11, 21, 12, 0, 0, 123_456_789, time.UTC),
	Boot:   0xfeedface,
	Mono:   90 * time.Second,
	Values: map[string]float64{"moisture": 61.5},
}

// view stores r as the buffer does and parses it as the publisher does.
func view(t testing.TB, r Reading) *RecordView {
	t.Helper()
	rec, err := MarshalRecord(nil, r)
	if err != nil {
		t.Fatal(err)
	}
	v, err := ParseRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	return &v
}

func TestMessageMatchesWireContract(t *testing.T) {
	got := string(AppendRecordMessage(nil, "kit-001", "", 42, view(t, sample)))
	want := `{"device":"kit-001","sensor":"soil-1","seq":42,"ts":"2026-11-21T12:00:00.123Z","values":{"moisture":61.5}}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestMessageClockAndEpoch(t *testing.T) {
	r := sample
	r.Clock = ClockUnsynced
	r.Values = map[string]float64{"temperature": -3.25, "humidity": 40}
	var m map[string]any
	if err := json.Unmarshal(AppendRecordMessage(nil, "kit-\"1\"", "e1", 7, view(t, r)), &m); err != nil {
		t.Fatal(err)
	}
	if m["clock"] != "unsynced" || m["epoch"] != "e1" || m["device"] != `kit-"1"` {
		t.Fatalf("fields: %v", m)
	}
	if v := m["values"].(map[string]any); v["temperature"] != -3.25 || v["humidity"] != 40.0 {
		t.Fatalf("values: %v", v)
	}
}

func TestBatchShapeAndSize(t *testing.T) {
	a, b := sample, sample
	b.Sensor, b.Clock = "air", ClockCorrected
	start := AppendBatchStart(nil, "kit-001", "ep")
	itemA, itemB := AppendRecordItem(nil, 1, view(t, a)), AppendRecordItem(nil, 2, view(t, b))
	msg := append(append(append(start, itemA...), ','), itemB...)
	msg = AppendBatchEnd(msg)
	var m struct {
		Device   string `json:"device"`
		Epoch    string `json:"epoch"`
		Readings []struct {
			Sensor string             `json:"sensor"`
			Seq    uint64             `json:"seq"`
			TS     string             `json:"ts"`
			Clock  string             `json:"clock"`
			Values map[string]float64 `json:"values"`
		} `json:"readings"`
	}
	if err := json.Unmarshal(msg, &m); err != nil {
		t.Fatalf("%v: %s", err, msg)
	}
	if m.Device != "kit-001" || len(m.Readings) != 2 || m.Readings[1].Clock != "corrected" || m.Readings[0].Clock != "" || m.Readings[1].Seq != 2 {
		t.Fatalf("batch: %+v", m)
	}
	// What a packer counts on: a batch is its start, its items, the
	// commas between them and BatchEndLen.
	size := len(start) + len(itemA) + 1 + len(itemB) + BatchEndLen
	if size != len(msg) {
		t.Fatalf("predicted %d bytes, message has %d", size, len(msg))
	}
}

func TestNonFiniteValuesStayJSON(t *testing.T) {
	r := sample
	r.Values = map[string]float64{"a": math.NaN(), "b": math.Inf(-1)}
	if !json.Valid(AppendRecordMessage(nil, "d", "", 0, view(t, r))) {
		t.Fatal("invalid JSON")
	}
}

func TestInvalidUTF8Escaped(t *testing.T) {
	if !json.Valid(appendString(nil, "a\xffb\n\x01")) {
		t.Fatal("invalid JSON")
	}
}

func TestRecordRoundTrip(t *testing.T) {
	r := sample
	r.Clock = ClockUnsynced
	r.Values = map[string]float64{"temperature": 21.5, "humidity": 40.25, "pressure": 1013.25}
	b, err := MarshalRecord(nil, r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := unmarshalRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Time.Equal(r.Time) {
		t.Fatalf("time %v != %v", got.Time, r.Time)
	}
	got.Time = r.Time
	if !reflect.DeepEqual(got, r) {
		t.Fatalf("got %+v want %+v", got, r)
	}
	for i := 0; i < len(b); i++ {
		if _, err := ParseRecord(b[:i]); err == nil {
			t.Fatalf("truncated at %d accepted", i)
		}
	}
}

// A record that parses is one MarshalRecord can write again, and that
// parses too.
func FuzzRecordRoundTrip(f *testing.F) {
	b, _ := MarshalRecord(nil, sample)
	f.Add(b)
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := ParseRecord(data)
		if err != nil || v.IsGap() {
			return
		}
		again, err := MarshalRecord(nil, v.Reading())
		if err != nil {
			t.Fatalf("decoded record does not re-encode: %v", err)
		}
		if _, err := ParseRecord(again); err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
	})
}

func TestRestamp(t *testing.T) {
	r := sample
	r.Clock = ClockUnsynced
	r.Time = time.Date(1970, 1, 1, 0, 1, 30, 0, time.UTC) // a Pi before NTP
	now := time.Date(2026, 11, 21, 12, 10, 0, 0, time.UTC)

	other := view(t, r)
	other.Restamp(now, 10*time.Minute, 0xbad)
	if other.Clock != ClockUnsynced {
		t.Fatal("reading from another boot was re-stamped")
	}
	v := view(t, r)
	v.Restamp(now, r.Mono+10*time.Minute, r.Boot)
	if v.Clock != ClockCorrected || !v.Time.Equal(now.Add(-10*time.Minute)) {
		t.Fatalf("restamped to %v %v", v.Time, v.Clock)
	}
	synced := view(t, sample)
	synced.Restamp(now, time.Hour, sample.Boot)
	if synced.Clock != ClockSynced || !synced.Time.Equal(sample.Time) {
		t.Fatal("synced reading changed")
	}
}
