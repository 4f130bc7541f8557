package telemetry

import (
	"encoding/json"
	"testing"
	"time"
)

// TestGapRecord: a stored gap goes out as the wire contract's gap record, in
// both message forms, with a seq of its own, and re-stamps like a reading.
func TestGapRecord(t *testing.T) {
	ts := time.Date(2026, 11, 21, 12, 0, 0, 123e6, time.UTC)
	rec := MarshalGap(nil, Gap{From: 40, To: 41, Reason: "full", Time: ts})
	v, err := ParseRecord(rec)
	if err != nil || !v.IsGap() {
		t.Fatalf("ParseRecord: %v, gap %v", err, v.IsGap())
	}
	got := string(AppendRecordMessage(nil, "kit-001", "e1", 42, &v))
	want := `{"device":"kit-001","epoch":"e1","seq":42,"ts":"2026-11-21T12:00:00.123Z","gap":{"from":40,"to":41,"reason":"full"}}`
	if got != want {
		t.Fatalf("single form\n got %s\nwant %s", got, want)
	}
	batch := AppendBatchStart(nil, "kit-001", "e1")
	batch = AppendBatchEnd(AppendRecordItem(batch, 42, &v))
	var m struct {
		Readings []struct {
			Seq    uint64
			Values map[string]float64
			Gap    struct {
				From, To uint64
				Reason   string
			}
		}
	}
	if err := json.Unmarshal(batch, &m); err != nil || len(m.Readings) != 1 || m.Readings[0].Gap.To != 41 || m.Readings[0].Values != nil {
		t.Fatalf("batched gap %s: %v %+v", batch, err, m)
	}
	unsynced := MarshalGap(nil, Gap{From: 1, To: 1, Reason: "unused", Time: ts, Clock: ClockUnsynced, Boot: 7, Mono: time.Second})
	v, _ = ParseRecord(unsynced)
	v.Restamp(ts.Add(time.Hour), 2*time.Second, 7)
	if got := string(AppendRecordItem(nil, 2, &v)); got != `{"seq":2,"ts":"2026-11-21T12:59:59.123Z","clock":"corrected","gap":{"from":1,"to":1,"reason":"unused"}}` {
		t.Fatalf("re-stamped gap: %s", got)
	}
	for i := range rec {
		if _, err := ParseRecord(rec[:i]); err == nil {
			t.Fatalf("truncated gap record of %d bytes parsed", i)
		}
	}
}
