//go:build mosquitto

package shadow

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/internal/testkit"
)

// With 32 sensors, each failing with a long error, a full dropped-ranges
// list, a full errors map and a desired setting for every sensor, the
// reported state stays under its budget and the whole state under AWS's
// 8 KB: the service accepts every report.
func TestReportedFitsWith32Sensors(t *testing.T) {
	e := newEnv(t)
	rejected := e.spy("$aws/things/" + kitID + "/shadow/update/rejected")
	var names []string
	base := map[string]time.Duration{}
	var sensors []Sensor
	for i := 0; i < 32; i++ {
		n := fmt.Sprintf("soil-probe-%02d", i)
		names = append(names, n)
		base[n] = 10 * time.Second
		sensors = append(sensors, Sensor{Name: n, Driver: "ads1115", LastError: "read: " + strings.Repeat("i2c bus /dev/i2c-1 address 0x48: remote I/O error; ", 8),
			LastReading: time.Date(2026, 11, 21, 12, 0, i, 123e6, time.UTC)})
	}
	target := newTarget(base, 1)
	var ranges [][2]uint64
	for i := uint64(0); i < 15; i++ {
		ranges = append(ranges, [2]uint64{1e15 + i*1000, 1e15 + i*1000 + 999})
	}
	live := &liveState{target: target, st: State{
		Agent:   Agent{Version: "v1.0.0-rc.1+g0123456789ab", Arch: "linux/arm/v6", Started: time.Now(), CertExpires: time.Now().Add(time.Hour)},
		Sensors: sensors,
		Buffer:  Buffer{Pending: 1 << 40, Bytes: 1 << 50, Dropped: 1 << 40, DroppedRanges: ranges},
	}}
	cfg := DefaultConfig()
	cfg.StateFile = filepath.Join(e.dir, "shadow.json")
	cfg.MinReportInterval = time.Hour
	logs := &testkit.LockedBuffer{}
	s, err := New(cfg, Deps{Device: kitID, Sensors: names, BatchMaxReadings: 1, Target: target, State: live.get, Log: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	}()
	e.connect(&kit{s: s})
	eventually(t, "report on connect", func() bool {
		d, ok := e.emu.Document(kitID, "")
		return ok && d.State.Reported["connected"] == true
	})

	desired := map[string]any{}
	for _, n := range names {
		desired[n] = map[string]any{"interval": "15s", "enabled": true}
	}
	if err := e.emu.UpdateDesired(kitID, "", map[string]any{"sensors": desired}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "every sensor's setting applied and echoed", func() bool {
		d := e.doc("")
		return len(d.State.Delta) == 0 && target.intervalOf(names[31]) == 15*time.Second
	})
	junk := map[string]any{"sensors": map[string]any{names[0]: map[string]any{"interval": "1s"}}}
	for i := 0; i < 12; i++ {
		junk[fmt.Sprintf("typo_%02d", i)] = i
	}
	if err := e.emu.UpdateDesired(kitID, "", junk); err != nil {
		t.Fatal(err)
	}
	eventually(t, "errors reported", func() bool {
		errs, _ := e.doc("").State.Reported["errors"].(map[string]any)
		return len(errs) == maxErrors
	})
	d := e.doc("")
	rep, _ := json.Marshal(d.State.Reported)
	des, _ := json.Marshal(d.State.Desired)
	t.Logf("reported %d bytes, desired %d bytes", len(rep), len(des))
	if len(rep) > maxReportedBytes {
		t.Fatalf("reported state %d bytes, budget %d", len(rep), maxReportedBytes)
	}
	if len(rep)+len(des) > 8192 {
		t.Fatalf("state %d bytes, AWS takes 8192", len(rep)+len(des))
	}
	if n := len(rejected.matching(func(spyMsg) bool { return true })); n != 0 {
		t.Fatalf("%d reports rejected", n)
	}
	if got := at(d.State.Reported, "buffer", "dropped_ranges").([]any); len(got) != maxDroppedRanges ||
		fmt.Sprint(got[0]) != fmt.Sprint([]any{float64(1e15 + 5000), float64(1e15 + 5999)}) {
		t.Fatalf("dropped_ranges %v, want the latest ten", got)
	}
}
