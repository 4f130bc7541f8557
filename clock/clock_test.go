package clock

import (
	"testing"
	"time"
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
