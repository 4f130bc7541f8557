//go:build roottest && mosquitto

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/internal/mosquittotest"
	"github.com/kitd-dev/kitd/internal/testkit"
)

// TestFullDiskWithFiller runs kitd with its buffer on a 4 MiB tmpfs while
// another process fills that file system to the last block: kitd must keep
// taking readings by dropping its oldest ones, and every seq a consumer
// misses must be explained in band (gap records, reason full). Root only
// (it mounts a tmpfs): `make test` runs it with -tags roottest.
func TestFullDiskWithFiller(t *testing.T) {
	b := mosquittotest.Start(t, mosquittotest.Options{Devices: []string{"kit-001"}})
	o := newObserver(t, b)
	// Offline through a proxy, not by stopping the broker: the observer
	// stays subscribed and misses nothing.
	px := newFlapProxy(t, b.Addr())
	px.cut(true)
	k := newKit(t, b, "kit-001", kitOptions{
		brokerURL: "tls://" + px.addr(),
		sensors:   simSensors(10, "100ms"),
		buffer:    "  max_bytes: 64MiB\n  min_free_bytes: 256KiB\n  segment_bytes: 64KiB\n",
	})
	if err := os.MkdirAll(k.bufferDir(), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", k.bufferDir(), "tmpfs", 0, "size=4m,mode=0750"); err != nil {
		t.Fatalf("mount tmpfs (needs root): %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(k.bufferDir(), syscall.MNT_DETACH) })

	end := k.run()
	// kitd has its buffer open and is taking readings before the disk
	// fills.
	testkit.WaitFor(t, 30*time.Second, "readings before the filler", func() bool { return k.bufferStats().LastSeq >= 20 })
	filler := filepath.Join(k.bufferDir(), "filler")
	out, err := exec.Command("dd", "if=/dev/zero", "of="+filler, "bs=64k").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "No space left") {
		t.Fatalf("the filler did not fill the file system: %v: %s", err, out)
	}
	// kitd keeps taking readings on the full file system.
	before := k.bufferStats().LastSeq
	testkit.WaitFor(t, 20*time.Second, "readings taken on the full disk", func() bool { return k.bufferStats().LastSeq >= before+100 })
	os.Remove(filler)
	px.cut(false)
	// The reconnect backoff may have grown to 2 min while offline.
	testkit.WaitFor(t, 150*time.Second, "delivery after the outage", func() bool { return o.count() >= 300 })
	end(false)
	if st := k.bufferStats(); st.Pending != 0 {
		t.Fatalf("%d readings pending after a clean stop with the broker up", st.Pending)
	}
	assertExplained(t, o)
	if !strings.Contains(k.logText(), "dropped oldest records to make room") {
		t.Errorf("kitd's log does not say what the buffer dropped:\n%s", k.logText())
	}
	if st := k.bufferStats(); st.Lost["full"] == 0 || o.gapReasons()["full"] == 0 {
		t.Fatalf("nothing dropped for space (lost %v, gap records %v): the test did not fill the disk", st.Lost, o.gapReasons())
	}
}
