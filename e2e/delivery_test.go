//go:build mosquitto

package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/internal/mosquittotest"
	"github.com/kitd-dev/kitd/internal/pki"
	"github.com/kitd-dev/kitd/internal/testkit"
)

// lifetime is one run of the process: the seqs it handed out.
type lifetime struct{ first, last uint64 }

// run starts the kit and returns a function that ends that run (by kill
// -9 or SIGTERM) and reports the seqs it took, read from the buffer the
// way a restarted agent would find it.
func (k *kit) run() func(kill bool) lifetime {
	k.start()
	k.mu.Lock()
	first := k.starts[len(k.starts)-1]
	k.mu.Unlock()
	return func(kill bool) lifetime {
		if kill {
			k.kill()
		} else {
			k.stop()
		}
		return lifetime{first: first, last: k.bufferStats().LastSeq}
	}
}

// assertDelivered checks the zero-loss promise by seq: every seq each run
// took arrived at least once.
func assertDelivered(t *testing.T, o *observer, runs []lifetime) (taken int) {
	t.Helper()
	for _, r := range runs {
		if r.last < r.first {
			continue
		}
		taken += int(r.last - r.first + 1)
		if miss := o.missing(r.first, r.last); len(miss) > 0 {
			t.Errorf("run with seqs %d..%d: %d readings never delivered, first %v", r.first, r.last, len(miss), miss[:min(len(miss), 10)])
		}
	}
	if taken == 0 {
		t.Fatal("no readings taken")
	}
	return taken
}

func TestNormalDelivery(t *testing.T) {
	b := mosquittotest.Start(t, mosquittotest.Options{Devices: []string{"kit-001"}})
	o := newObserver(t, b)
	k := newKit(t, b, "kit-001", kitOptions{})
	end := k.run()
	testkit.WaitFor(t, 20*time.Second, "60 readings", func() bool { return o.count() >= 60 })
	r := end(false)
	taken := assertDelivered(t, o, []lifetime{r})
	if st := k.bufferStats(); st.Pending != 0 {
		t.Errorf("after a clean stop with the broker up, %d readings still pending", st.Pending)
	}
	t.Logf("taken %d, delivered %d, duplicates %d", taken, o.count(), o.duplicates())
	if d := o.duplicates(); d != 0 {
		t.Errorf("%d duplicates with no fault at all", d)
	}
	// Status: connected:true while up, connected:false on clean shutdown.
	st := strings.Join(o.statuses(), "\n")
	if !strings.Contains(st, `kits/kit-001/status {"state":{"reported":{"connected":true}},"ts":"`) {
		t.Errorf("no connected:true status:\n%s", st)
	}
	if !strings.HasSuffix(st, `kits/kit-001/status {"state":{"reported":{"connected":false}}}`) {
		t.Errorf("last status is not connected:false after SIGTERM:\n%s", st)
	}
}

func TestBrokerOutage(t *testing.T) {
	b := mosquittotest.Start(t, mosquittotest.Options{Devices: []string{"kit-001"}})
	o := newObserver(t, b)
	k := newKit(t, b, "kit-001", kitOptions{})
	end := k.run()
	testkit.WaitFor(t, 20*time.Second, "first readings", func() bool { return o.count() >= 10 })
	outage := 30 * time.Second
	if testing.Short() {
		outage = 8 * time.Second
	}
	b.Stop()
	time.Sleep(outage)
	b.Restart()
	before := o.count()
	// Readings taken during the outage arrive after it, and fresh ones too.
	// kitd's backoff ceiling doubles with every failed connect, up to 2
	// min, and the wait is drawn below it: after a 30 s outage the next
	// attempt may come more than a minute after the broker is back.
	testkit.WaitFor(t, 150*time.Second, "the backlog", func() bool { return o.count() >= before+int(outage/time.Second)*20 })
	r := end(false)
	assertDelivered(t, o, []lifetime{r})
	t.Logf("delivered %d, duplicates %d", o.count(), o.duplicates())
}

func TestKillNineDuringDelivery(t *testing.T) {
	b := mosquittotest.Start(t, mosquittotest.Options{Devices: []string{"kit-001"}})
	o := newObserver(t, b)
	k := newKit(t, b, "kit-001", kitOptions{sensors: simSensors(5, "100ms")})
	var runs []lifetime
	dupsBefore := 0
	for i := 0; i < 2; i++ {
		end := k.run()
		n := o.count()
		testkit.WaitFor(t, 20*time.Second, "delivery", func() bool { return o.count() >= n+40 })
		killed := time.Now()
		r := end(true)
		runs = append(runs, r)
		// Restart and let it resend; count what came twice because of
		// this kill.
		end = k.run()
		testkit.WaitFor(t, 30*time.Second, "resend after kill", func() bool { return len(o.missing(r.first, r.last)) == 0 })
		n = o.count()
		testkit.WaitFor(t, 20*time.Second, "fresh readings after restart", func() bool { return o.count() >= n+20 })
		runs = append(runs, end(false))
		dups := o.duplicates() - dupsBefore
		dupsBefore = o.duplicates()
		// Bound: what was acknowledged in the last sync interval before
		// the kill (the cursor is saved at most every interval), plus the
		// in-flight window (10).
		ackedLastInterval := o.receivedBetween(killed.Add(-1500*time.Millisecond), killed)
		t.Logf("kill %d: %d duplicates (bound %d = %d acked in the last interval + 10 in flight)", i+1, dups, ackedLastInterval+10, ackedLastInterval)
		if dups > ackedLastInterval+10 {
			t.Errorf("kill %d: %d duplicates, more than the %d acked in the last sync interval plus the window", i+1, dups, ackedLastInterval)
		}
	}
	assertDelivered(t, o, runs)
	// The seqs each kill left reserved are explained in band as unused.
	assertExplained(t, o)
	// Seqs never repeat across kills: each run starts above the last.
	for i := 1; i < len(runs); i++ {
		if runs[i].first <= runs[i-1].last {
			t.Errorf("run %d starts at seq %d, not above the previous run's %d", i, runs[i].first, runs[i-1].last)
		}
	}
}

func TestStartWhileBrokerUnreachable(t *testing.T) {
	b := mosquittotest.Start(t, mosquittotest.Options{Devices: []string{"kit-001"}})
	b.Stop()
	k := newKit(t, b, "kit-001", kitOptions{})
	end := k.run()
	// Collecting from the first second, offline.
	testkit.WaitFor(t, 10*time.Second, "readings buffered offline", func() bool { return k.bufferStats().Pending >= 20 })
	b.Restart()
	o := newObserver(t, b)
	testkit.WaitFor(t, 60*time.Second, "the offline readings", func() bool { return o.count() >= 20 && o.has(1) })
	r := end(false)
	assertDelivered(t, o, []lifetime{r})
}

func TestWrongClientCertificate(t *testing.T) {
	b := mosquittotest.Start(t, mosquittotest.Options{Devices: []string{"kit-001"}})
	rogue, err := pki.NewCA(t.TempDir(), "rogue CA")
	if err != nil {
		t.Fatal(err)
	}
	bad, err := rogue.Client("kit-001", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	k := newKit(t, b, "kit-001", kitOptions{certFile: bad.CertFile, keyFile: bad.KeyFile})
	k.start()
	time.Sleep(6 * time.Second)
	k.stop()
	log := k.logText()
	if !strings.Contains(strings.ToLower(log), "certificate") {
		t.Errorf("the log does not say the certificate was the problem:\n%s", log)
	}
	// Backoff from 1 s: at most a handful of attempts in 6 s, not a loop.
	attempts := strings.Count(log, "connect failed")
	if attempts == 0 || attempts > 5 {
		t.Errorf("%d connection attempts in 6 s; want 1..5 (backoff, not a tight loop)", attempts)
	}
	if st := k.bufferStats(); st.Pending == 0 {
		t.Error("readings were not kept while the broker refused the kit")
	}
}

func TestWillAfterKill(t *testing.T) {
	b := mosquittotest.Start(t, mosquittotest.Options{Devices: []string{"kit-001"}})
	o := newObserver(t, b)
	k := newKit(t, b, "kit-001", kitOptions{keepalive: "2s"})
	k.start()
	testkit.WaitFor(t, 20*time.Second, "connected:true", func() bool {
		return strings.Contains(strings.Join(o.statuses(), "\n"), `"connected":true`)
	})
	k.signal(syscall.SIGKILL)
	k.wait(10 * time.Second)
	// Mosquitto notices the dead socket at once (the kernel closes it) and
	// publishes the Will.
	testkit.WaitFor(t, 20*time.Second, "the Will", func() bool {
		st := o.statuses()
		return len(st) > 0 && st[len(st)-1] == `kits/kit-001/status {"state":{"reported":{"connected":false}}}`
	})
}
