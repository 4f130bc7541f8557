//go:build mosquitto

package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/buffer"
	"github.com/kitd-dev/kitd/internal/mosquittotest"
	"github.com/kitd-dev/kitd/internal/testkit"
)

// TestDamagedSeqFile: the seq file lost or zero-filled between two runs must
// not make new readings be born inside the acknowledged range: they arrive,
// above every seq before, and a consumer can explain every missing seq.
func TestDamagedSeqFile(t *testing.T) {
	for name, hurt := range map[string]func(string) error{
		"removed": os.Remove,
		"zeroed":  func(p string) error { return os.WriteFile(p, make([]byte, 8192), 0o640) },
	} {
		t.Run(name, func(t *testing.T) {
			b := mosquittotest.Start(t, mosquittotest.Options{Devices: []string{"kit-001"}})
			o := newObserver(t, b)
			k := newKit(t, b, "kit-001", kitOptions{})
			end := k.run()
			testkit.WaitFor(t, 20*time.Second, "30 readings", func() bool { return o.count() >= 30 })
			first := end(false)
			testkit.WaitFor(t, 10*time.Second, "delivery of the first run", func() bool { return len(o.missing(first.first, first.last)) == 0 })
			// A run that appends nothing: the acknowledged segments go,
			// and the cursor is the only trace of the seqs used.
			cfg := buffer.DefaultConfig()
			cfg.Dir, cfg.MinFreeBytes = k.bufferDir(), 0
			bf, err := buffer.Open(cfg, buffer.Deps{})
			if err != nil {
				t.Fatal(err)
			}
			bf.Close()
			if segs, _ := filepath.Glob(filepath.Join(k.bufferDir(), "*.seg")); len(segs) != 0 {
				t.Fatalf("segments left after an idle run: %v", segs)
			}
			if err := hurt(filepath.Join(k.bufferDir(), "seq")); err != nil {
				t.Fatal(err)
			}
			n := o.count()
			end = k.run()
			testkit.WaitFor(t, 20*time.Second, "readings after the damage", func() bool { return o.count() >= n+30 })
			second := end(false)
			if second.first <= first.last {
				t.Fatalf("after the seq file was %s, seqs start at %d, inside the first run's 1..%d", name, second.first, first.last)
			}
			assertDelivered(t, o, []lifetime{first, second})
			assertExplained(t, o)
		})
	}
}

// TestDeletedBufferDir: the buffer directory deleted under the running agent
// is made again and readings go on being kept and delivered, without a
// restart; every seq is delivered or explained.
func TestDeletedBufferDir(t *testing.T) {
	b := mosquittotest.Start(t, mosquittotest.Options{Devices: []string{"kit-001"}})
	o := newObserver(t, b)
	k := newKit(t, b, "kit-001", kitOptions{})
	end := k.run()
	testkit.WaitFor(t, 20*time.Second, "first readings", func() bool { return o.count() >= 20 })
	if err := os.RemoveAll(k.bufferDir()); err != nil {
		t.Fatal(err)
	}
	n := o.count()
	testkit.WaitFor(t, 20*time.Second, "readings after the deletion", func() bool { return o.count() >= n+40 })
	if fi, err := os.Stat(filepath.Join(k.bufferDir(), "seq")); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("buffer directory not made again: %v", err)
	}
	end(false)
	assertExplained(t, o)
	if st := k.bufferStats(); st.Pending != 0 {
		t.Fatalf("%d readings pending after a clean stop with the broker up", st.Pending)
	}
	// The directory survives a restart with what was written after.
	end = k.run()
	n = o.count()
	testkit.WaitFor(t, 20*time.Second, "readings after a restart", func() bool { return o.count() >= n+10 })
	end(false)
}
