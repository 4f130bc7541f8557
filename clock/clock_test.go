package clock

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kitd-dev/kitd/telemetry"
)

func TestTrustSystemAlwaysSynced(t *testing.T) {
	if !New(Config{TrustSystem: true}).Synced() {
		t.Fatal("trust_system clock reports unsynced")
	}
}

func TestMonoAdvancesAndBootStable(t *testing.T) {
	a, b := New(Config{}), New(Config{})
	if a.Boot() != b.Boot() {
		t.Fatal("two clocks in one boot disagree on the boot id")
	}
	m1 := a.Mono()
	time.Sleep(2 * time.Millisecond)
	if d := a.Mono() - m1; d < time.Millisecond {
		t.Fatalf("boot-time clock moved %v in 2ms", d)
	}
}

// kernel plays adjtimex: its sync flag can be flipped, and it counts how
// often it was asked.
type kernel struct {
	synced bool
	asked  int
}

func (k *kernel) adjtimex(tx *unix.Timex) (int, error) {
	k.asked++
	if !k.synced {
		tx.Status = unix.STA_UNSYNC
		return unix.TIME_ERROR, nil
	}
	return unix.TIME_OK, nil
}

// fakeTime is a clock under test whose kernel and elapsed time the test
// moves by hand.
func fakeTime(k *kernel, elapsed *time.Duration) *System {
	s := New(Config{})
	s.adjtimex = k.adjtimex
	s.since = func() time.Duration { return *elapsed }
	return s
}

func TestSyncedAsksTheKernelAtMostOncePerTTL(t *testing.T) {
	k := &kernel{}
	var elapsed time.Duration
	s := fakeTime(k, &elapsed)
	for range 100 {
		if s.Synced() {
			t.Fatal("unsynced kernel reported synced")
		}
		elapsed += syncTTL / 200
	}
	if k.asked != 1 {
		t.Fatalf("asked the kernel %d times within one TTL, want 1", k.asked)
	}
	// The kernel syncs: seen once the TTL has passed since the last look,
	// not before.
	k.synced = true
	if s.Synced() {
		t.Fatal("a cached answer was not used within the TTL")
	}
	elapsed = syncTTL
	if !s.Synced() {
		t.Fatal("sync not seen after the TTL")
	}
	if k.asked != 2 {
		t.Fatalf("asked %d times, want 2", k.asked)
	}
	// And losing the sync the same way.
	k.synced = false
	elapsed += syncTTL - 1
	if !s.Synced() {
		t.Fatal("a cached answer was not used within the TTL")
	}
	elapsed++
	if s.Synced() {
		t.Fatal("loss of sync not seen after the TTL")
	}
}

func TestSyncedKernelError(t *testing.T) {
	var elapsed time.Duration
	s := New(Config{})
	s.since = func() time.Duration { return elapsed }
	s.adjtimex = func(*unix.Timex) (int, error) { return 0, unix.EPERM }
	if s.Synced() {
		t.Fatal("a failing adjtimex reported synced")
	}
}

// A reading taken while unsynced is corrected from the boot-time clock
// once Synced (cached or not) says true: its time becomes the wall time
// then minus the monotonic time elapsed since it was taken.
func TestUnsyncedReadingCorrectedAfterSync(t *testing.T) {
	k := &kernel{}
	var elapsed time.Duration
	s := fakeTime(k, &elapsed)
	r := telemetry.Reading{Sensor: "t", Time: time.Unix(90, 0), Mono: s.Mono(), Boot: s.Boot(), Values: map[string]float64{"temperature": 21}}
	if !s.Synced() {
		r.Clock = telemetry.ClockUnsynced
	}
	if r.Clock != telemetry.ClockUnsynced {
		t.Fatal("reading taken on an unsynced kernel not flagged")
	}
	rec, err := telemetry.MarshalRecord(nil, r)
	if err != nil {
		t.Fatal(err)
	}
	v, err := telemetry.ParseRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	k.synced = true
	elapsed = syncTTL
	if !s.Synced() {
		t.Fatal("sync not seen after the TTL")
	}
	time.Sleep(2 * time.Millisecond) // some boot time passes between the reading and its delivery
	now, mono := s.Now(), s.Mono()
	v.Restamp(now, mono, s.Boot())
	if v.Clock != telemetry.ClockCorrected {
		t.Fatalf("clock %v after sync, want corrected", v.Clock)
	}
	if want := now.Add(-(mono - r.Mono)); !v.Time.Equal(want) || mono-r.Mono < 2*time.Millisecond {
		t.Fatalf("re-stamped to %v, want %v (mono elapsed %v)", v.Time, want, mono-r.Mono)
	}
}
