//go:build mosquitto

package e2e

import (
	"os"
	"path/filepath"
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
	// The broker goes away for the kit only, through a proxy that cuts its
	// connection and refuses new ones: the observer stays subscribed and
	// misses nothing. (Stopping the broker itself lost, to the observer's
	// clean session, what the broker had not yet passed on, and whatever
	// the kit delivered before the observer was back.)
	px := newFlapProxy(t, b.Addr())
	k := newKit(t, b, "kit-001", kitOptions{brokerURL: "tls://" + px.addr()})
	end := k.run()
	testkit.WaitFor(t, 20*time.Second, "first readings", func() bool { return o.count() >= 10 })
	outage := 30 * time.Second
	if testing.Short() {
		outage = 8 * time.Second
	}
	px.cut(true)
	time.Sleep(outage)
	// Readings were taken during the outage.
	if st := k.bufferStats(); st.Pending == 0 {
		t.Fatalf("nothing pending after a %v outage: %+v", outage, st)
	}
	taken := k.bufferStats().LastSeq
	px.cut(false)
	// They arrive after it. kitd's backoff ceiling doubles with every
	// failed connect, up to 2 min, and the wait is drawn below it: after
	// a 30 s outage the next attempt may come more than a minute after
	// the broker is back.
	testkit.WaitFor(t, 150*time.Second, "the backlog", func() bool { return o.has(taken) && len(o.missing(1, taken)) == 0 })
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
		// When the buffer last saved its ack cursor before the kill: the
		// readings acknowledged after that are the ones sent again.
		fi, err := os.Stat(filepath.Join(k.bufferDir(), "cursor"))
		if err != nil {
			t.Fatal(err)
		}
		saved := fi.ModTime()
		// Restart and let it resend; count what came twice because of
		// this kill.
		restarted := time.Now()
		end = k.run()
		testkit.WaitFor(t, 30*time.Second, "resend after kill", func() bool { return len(o.missing(r.first, r.last)) == 0 })
		n = o.count()
		testkit.WaitFor(t, 20*time.Second, "fresh readings after restart", func() bool { return o.count() >= n+20 })
		runs = append(runs, end(false))
		dups := o.duplicates() - dupsBefore
		dupsBefore = o.duplicates()
		// Bound: what reached the observer after the cursor was last
		// saved (up to the restart: nothing is sent between), plus the
		// in-flight window (10) for what was on its way when it was saved.
		// Anchored on the save the buffer made, not on the clock around
		// the kill: a loaded machine delays the save, the acks and the
		// observer, never this bound. The cursor is saved at most every
		// sync interval (1 s); how long before the kill is logged.
		afterSave := o.receivedBetween(saved, restarted)
		t.Logf("kill %d: %d duplicates (bound %d = %d received after the cursor save %v before the kill + 10 in flight)",
			i+1, dups, afterSave+10, afterSave, killed.Sub(saved).Round(time.Millisecond))
		if dups > afterSave+10 {
			t.Errorf("kill %d: %d duplicates, more than the %d received after the last cursor save plus the window", i+1, dups, afterSave)
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
	// Unreachable for the kit only: the observer is subscribed before the
	// kit can deliver anything, so it misses nothing.
	o := newObserver(t, b)
	px := newFlapProxy(t, b.Addr())
	px.cut(true)
	k := newKit(t, b, "kit-001", kitOptions{brokerURL: "tls://" + px.addr()})
	end := k.run()
	// Collecting from the first second, offline.
	testkit.WaitFor(t, 10*time.Second, "readings buffered offline", func() bool { return k.bufferStats().Pending >= 20 })
	px.cut(false)
	testkit.WaitFor(t, 150*time.Second, "the offline readings", func() bool { return o.count() >= 20 && o.has(1) })
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
	// Waiting for the refusal, not for a fixed time: a loaded machine may
	// take seconds to start kitd. The spacing of the attempts (backoff,
	// not a tight loop) is the publisher's TestWrongClientCert, counted
	// there at a proxy in front of the broker.
	testkit.WaitFor(t, 60*time.Second, "the refusal in the log", func() bool { return strings.Contains(k.logText(), "connect failed") })
	testkit.WaitFor(t, 60*time.Second, "readings kept", func() bool { return k.bufferStats().Pending > 0 })
	k.stop()
	log := k.logText()
	if !strings.Contains(strings.ToLower(log), "certificate") {
		t.Errorf("the log does not say the certificate was the problem:\n%s", log)
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
