package proctest

import (
	"os"
	"testing"
	"time"
)

// Burn CPU and see it counted: the reading moves, by at least most of
// the work done (ticks are 10 ms).
func TestCPUCountsWork(t *testing.T) {
	before, err := CPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	x := 0
	for time.Since(start) < 200*time.Millisecond {
		x++
	}
	after, err := CPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if d := after - before; d < 100*time.Millisecond {
		t.Fatalf("200 ms of spinning counted as %v (x=%d)", d, x)
	}
	if _, err := CPU(-1); err == nil {
		t.Fatal("no error for a missing process")
	}
}
