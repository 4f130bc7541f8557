package proctest

import (
	"os"
	"testing"
	"time"
)

// A command name may hold spaces and parentheses; the times are the 14th
// and 15th fields of the line.
func TestParseStat(t *testing.T) {
	line := []byte("4242 (kitd (x) y) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 9 0 100 0 0\n")
	d, err := parseStat(line)
	if err != nil || d != 3250*time.Millisecond {
		t.Fatalf("got %v, %v; want 3.25s", d, err)
	}
	for _, bad := range []string{"", "1 (x) S 1 2", "1 (x) S 1 2 3 4 5 6 7 8 9 10 u s 0"} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := CPU(-1); err == nil {
		t.Fatal("no error for a missing process")
	}
}

// Burn CPU and see it counted. qemu-user fakes /proc/self/stat, so this
// part runs natively only (make test-arm sets KITD_TEST_EMULATED). The
// spin lasts until 100 ms of CPU are counted, not for a wall-clock time:
// on a loaded machine 200 ms of wall time may get far less CPU. Only a
// counter that never moves runs into the minute's bound.
func TestCPUCountsWork(t *testing.T) {
	if os.Getenv("KITD_TEST_EMULATED") != "" {
		t.Skip("qemu-user fakes /proc/self/stat; TestParseStat covers the parser here")
	}
	before, err := CPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	x := 0
	for {
		for i := 0; i < 1_000_000; i++ {
			x++
		}
		after, err := CPU(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if d := after - before; d >= 100*time.Millisecond {
			return
		}
		if time.Since(start) > time.Minute {
			t.Fatalf("a minute of spinning counted as %v (x=%d)", after-before, x)
		}
	}
}
