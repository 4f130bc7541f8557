package shadow

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// benchShadow is a shadow over 32 sensors whose state changes every
// reading, as on a busy kit.
func benchShadow(b *testing.B) (*Shadow, *liveState) {
	b.Helper()
	var names []string
	base := map[string]time.Duration{}
	var sensors []Sensor
	for i := 0; i < 32; i++ {
		n := fmt.Sprintf("soil-%02d", i)
		names = append(names, n)
		base[n] = 10 * time.Second
		sensors = append(sensors, Sensor{Name: n, Driver: "ads1115", OK: i%4 != 0, LastError: strings.Repeat("e", i*4)})
	}
	target := newTarget(base, 1)
	live := &liveState{target: target, st: State{Sensors: sensors, Buffer: Buffer{DroppedRanges: [][2]uint64{{1, 2}}}}}
	cfg := DefaultConfig()
	cfg.StateFile = filepath.Join(b.TempDir(), "shadow.json")
	s, err := New(cfg, Deps{Device: kitID, Sensors: names, BatchMaxReadings: 1, Target: target, State: live.get})
	if err != nil {
		b.Fatal(err)
	}
	s.mu.Lock()
	s.base.snapshot(live.get())
	s.mu.Unlock()
	return s, live
}

// The work of one periodic report: build the reported document and
// diff it against the last one.
func BenchmarkReportDiff32Sensors(b *testing.B) {
	s, live := benchShadow(b)
	s.mu.Lock()
	s.last = s.buildLocked(live.get())
	s.mu.Unlock()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		live.set(func(st *State) {
			st.Buffer.Pending = int64(i)
			st.Sensors[i%32].LastReading = time.Unix(int64(i), 0)
		})
		st := live.get()
		s.mu.Lock()
		doc := s.buildLocked(st)
		patch := diff(s.last, doc)
		applyPatch(s.last, patch)
		s.mu.Unlock()
		if len(patch) == 0 {
			b.Fatal("no change seen")
		}
	}
}

// Validating and applying a delta that changes nothing (the steady state
// after the first one; persisting is measured apart).
func BenchmarkDeltaNoChange(b *testing.B) {
	s, _ := benchShadow(b)
	payload := []byte(`{"version":5,"state":{"sensors":{"soil-01":{"interval":"60s","enabled":true},"soil-02":{"interval":"30s"}},"mqtt":{"batch":{"max_readings":10}}}}`)
	s.handleDelta(payload)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.handleDelta(payload)
	}
}
