package sensors

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/internal/testkit"
)

// These tests run the real loop with real timers at the shortest interval
// the config allows; they assert counts with generous bounds, never
// exact timing, because the machine is shared and may be emulated.

const tick = 100 * time.Millisecond

func newTestScheduler(t *testing.T, probes map[string]*probe, cfgs []Config, rec *sinkRec, log *logBuf) *Scheduler {
	t.Helper()
	for i := range cfgs {
		cfgs[i].Driver = "probe"
		if cfgs[i].Interval == 0 {
			cfgs[i].Interval = tick
		}
	}
	lg := (&logBuf{}).logger()
	if log != nil {
		lg = log.logger()
	}
	s, err := NewScheduler(cfgs, Deps{Registry: probeRegistry(t, probes), Sink: rec.sink, Clock: newFakeClock(), Log: lg})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFailingAndHangingSensorsDoNotSlowOthers(t *testing.T) {
	hung := &probe{hang: func(int) time.Duration { return time.Hour }}
	failing := &probe{readFn: func(int) (Values, error) { return nil, errors.New("nack") }}
	good := &probe{}
	probes := map[string]*probe{"hung": hung, "failing": failing, "good": good}
	rec := &sinkRec{}
	s := newTestScheduler(t, probes, []Config{
		{Name: "hung", Timeout: 50 * time.Millisecond},
		{Name: "failing"},
		{Name: "good"},
	}, rec, nil)
	start := time.Now()
	stop := running(t, s)
	// The good sensor goes on reading while the hung one holds its device
	// and the failing one fails: counted, not timed, so a loaded machine
	// is slower but never wrong.
	testkit.WaitFor(t, 60*time.Second, "the good sensor's readings beside a hung and a failing one", func() bool {
		_, _, r := failing.counts()
		return rec.countFor("good") >= 10 && r >= 3 && s.Health()[0].Failures >= 1
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)

	// No attempt comes before its planned time, and plans start at Run:
	// the counts are bounded by the time that passed, however long that
	// was. The good sensor reads at most once per interval.
	if n, most := rec.countFor("good"), int(elapsed/tick)+1; n > most {
		t.Fatalf("good sensor: %d readings in %v, more than one per %v", n, elapsed, tick)
	}
	// The hung read still holds its device: never read again nor re-opened.
	if o, _, r := hung.counts(); o != 1 || r != 1 {
		t.Fatalf("hung sensor: opens=%d reads=%d while its first read hangs, want 1 1", o, r)
	}
	// The failing sensor backs off: its k-th attempt is planned after the
	// first k-1 waits, each double the last (up to MaxBackoff).
	most, planned, wait := 1, time.Duration(0), tick
	for {
		planned += wait
		wait = min(2*wait, max(MaxBackoff, tick))
		if planned > elapsed {
			break
		}
		most++
	}
	if _, _, r := failing.counts(); r > most {
		t.Fatalf("failing sensor: %d reads in %v, want at most %d with the backoff", r, elapsed, most)
	}
	hs := s.Health()
	if hs[0].Name != "hung" || hs[0].OK || !strings.Contains(hs[0].LastError, "timeout") {
		t.Fatalf("hung health %+v", hs[0])
	}
	if hs[1].OK || hs[1].ConsecutiveFailures < 2 || hs[2].Failures != 0 || !hs[2].OK {
		t.Fatalf("health %+v", hs)
	}
	for _, p := range probes {
		p.checkMisuse(t)
	}
}

func TestAbandonedReadHoldsDeviceAndIsDiscarded(t *testing.T) {
	// Every read hangs well past its deadline and then returns a value
	// that must never be seen. Three timeouts close the driver, so the
	// close and the re-open have to queue behind abandoned reads.
	// Read n returns only once the scheduler has counted n failures, so
	// always after its deadline was taken (a fixed hang could lose the race
	// to a deadline that a loaded machine fires late).
	var s *Scheduler
	p := &probe{readFn: func(n int) (Values, error) {
		waitFailures(func() int { return int(s.Health()[0].Failures) }, n)
		return Values{"temperature": 999}, nil
	}}
	rec := &sinkRec{}
	s = newTestScheduler(t, map[string]*probe{"a": p}, []Config{{Name: "a", Timeout: 30 * time.Millisecond}}, rec, nil)
	stop := running(t, s)
	testkit.WaitFor(t, 10*time.Second, "a re-open after three abandoned reads", func() bool {
		o, c, _ := p.counts()
		return o >= 2 && c >= 1
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := len(rec.readings()); n != 0 {
		t.Fatalf("%d readings from abandoned reads reached the sink", n)
	}
	h := s.Health()[0]
	if h.Failures < 3 || !strings.Contains(h.LastError, "no answer within 30ms") {
		t.Fatalf("health %+v", h)
	}
	// Run has returned; the last abandoned read still closes its driver
	// when it returns.
	testkit.WaitFor(t, 5*time.Second, "driver closed after the last abandoned read", func() bool {
		o, c, _ := p.counts()
		return o == c && !p.isReading()
	})
	p.checkMisuse(t)
}

func TestReadsResumeAfterAbandonedReadReturns(t *testing.T) {
	// The first read returns only once the scheduler has counted it as
	// failed: after its deadline, however late that fires.
	var s *Scheduler
	p := &probe{readFn: func(n int) (Values, error) {
		if n == 1 {
			waitFailures(func() int { return int(s.Health()[0].Failures) }, 1)
		}
		return Values{"temperature": float64(n)}, nil
	}}
	rec := &sinkRec{}
	s = newTestScheduler(t, map[string]*probe{"a": p}, []Config{{Name: "a", Timeout: 50 * time.Millisecond}}, rec, nil)
	running(t, s)
	testkit.WaitFor(t, 10*time.Second, "three readings after the hung one", func() bool { return len(rec.readings()) >= 3 })
	for _, r := range rec.readings() {
		if r.Values["temperature"] == 1 {
			t.Fatal("the abandoned read's result was used")
		}
	}
	if o, _, _ := p.counts(); o != 1 {
		t.Fatalf("opens=%d: one timeout must not re-open", o)
	}
	h := s.Health()[0]
	if !h.OK || h.Failures != 1 || h.LastError != "" {
		t.Fatalf("health %+v", h)
	}
	p.checkMisuse(t)
}

func TestFirstReadsAreStaggered(t *testing.T) {
	n := 8
	if testing.Short() {
		n = 4
	}
	probes := map[string]*probe{}
	var cfgs []Config
	for i := range n {
		name := fmt.Sprintf("s%d", i)
		probes[name] = &probe{}
		// An interval far past any wait: a first read that waited for it
		// instead of its offset never comes.
		cfgs = append(cfgs, Config{Name: name, Interval: time.Hour})
	}
	s := newTestScheduler(t, probes, cfgs, &sinkRec{}, nil)
	start := time.Now()
	running(t, s)
	testkit.WaitFor(t, 60*time.Second, "every sensor read once", func() bool {
		for _, p := range probes {
			if _, _, r := p.counts(); r == 0 {
				return false
			}
		}
		return true
	})
	// Each first read waited for its sensor's offset (a read never comes
	// before its planned time, so this holds however slow the machine),
	// and the offsets are i/n of a second.
	for i := range n {
		name := fmt.Sprintf("s%d", i)
		off := s.byName[name].stagger
		if want := time.Second * time.Duration(i) / time.Duration(n); off != want {
			t.Fatalf("%s: offset %v, want %v", name, off, want)
		}
		p := probes[name]
		p.mu.Lock()
		at := p.readStarts[0]
		p.mu.Unlock()
		if d := at.Sub(start); d < off {
			t.Fatalf("%s: first read %v after start, before its offset %v", name, d, off)
		}
	}
}

// After their staggered first reads, sensors plan their attempts on one
// grid: equal intervals at the same instant, multiples on shared points,
// a sensor enabled later on the same grid. The planned times are exact,
// so this holds however slow the machine.
func TestSensorsShareOneGrid(t *testing.T) {
	probes := map[string]*probe{"a": {}, "b": {}, "c": {}, "half": {}, "double": {}, "late": {}}
	cfgs := []Config{
		{Name: "a", Interval: time.Hour},
		{Name: "b", Interval: time.Hour},
		{Name: "c", Interval: time.Hour},
		{Name: "half", Interval: 30 * time.Minute},
		{Name: "double", Interval: 2 * time.Hour},
		{Name: "late", Interval: time.Hour, Enabled: ptr(false)},
	}
	s := newTestScheduler(t, probes, cfgs, &sinkRec{}, nil)
	running(t, s)
	next := func(name string) time.Time { return s.byName[name].health().NextAttempt }
	// Before its first read a loop's plan is its staggered offset; after
	// the read it plans the next, at least half an hour on.
	testkit.WaitFor(t, 60*time.Second, "every enabled sensor read once and planned the next", func() bool {
		for name := range probes {
			if name != "late" && !next(name).After(time.Now().Add(time.Minute)) {
				return false
			}
		}
		return true
	})
	tickAt := next("a")
	for _, c := range []struct {
		name string
		want time.Time
	}{
		{"b", tickAt},
		{"c", tickAt},
		{"half", tickAt.Add(-30 * time.Minute)},
		{"double", tickAt.Add(time.Hour)},
	} {
		if got := next(c.name); !got.Equal(c.want) {
			t.Errorf("%s: next attempt %v from a's, want %v", c.name, got.Sub(tickAt), c.want.Sub(tickAt))
		}
	}
	if !next("late").IsZero() {
		t.Fatalf("a disabled sensor has a planned attempt: %v", next("late"))
	}
	if err := s.SetEnabled("late", true); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "the enabled sensor read and planned again", func() bool {
		_, _, r := probes["late"].counts()
		return r == 1 && next("late").After(time.Now().Add(time.Minute))
	})
	if d := next("late").Sub(tickAt); d%time.Hour != 0 {
		t.Fatalf("the sensor enabled later plans %v from the others' tick, not on their grid", d)
	}
}

func TestSetIntervalShorterTakesEffectAtOnce(t *testing.T) {
	p := &probe{}
	rec := &sinkRec{}
	log := &logBuf{}
	s := newTestScheduler(t, map[string]*probe{"a": p}, []Config{{Name: "a", Interval: time.Hour}}, rec, log)
	running(t, s)
	testkit.WaitFor(t, 5*time.Second, "first read", func() bool { return len(rec.readings()) == 1 })
	if err := s.SetInterval("a", tick); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 5*time.Second, "reads at the new interval, not after the old hour", func() bool {
		return len(rec.readings()) >= 4
	})
	if h := s.Health()[0]; h.Interval != tick {
		t.Fatalf("health interval %v", h.Interval)
	}
	// And longer: once the loop has taken the change (it logs it), reads
	// stop.
	if err := s.SetInterval("a", time.Hour); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "the loop to take the hour", func() bool { return len(log.lines("sensor interval changed")) == 2 })
	n := len(rec.readings())
	time.Sleep(5 * tick) // five of the old intervals, for a read that should not come
	if m := len(rec.readings()); m != n {
		t.Fatalf("%d reads after the interval became an hour", m-n)
	}
}

func TestSetEnabledClosesAndOpens(t *testing.T) {
	p := &probe{}
	rec := &sinkRec{}
	log := &logBuf{}
	s := newTestScheduler(t, map[string]*probe{"a": p}, []Config{{Name: "a", Enabled: ptr(false)}}, rec, log)
	running(t, s)
	time.Sleep(3 * tick)
	if o, _, _ := p.counts(); o != 0 {
		t.Fatal("a disabled sensor was opened")
	}
	if h := s.Health()[0]; h.Enabled || h.OK {
		t.Fatalf("health %+v", h)
	}
	if err := s.SetEnabled("a", true); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 5*time.Second, "readings after enabling", func() bool { return len(rec.readings()) >= 2 })
	if err := s.SetEnabled("a", false); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 5*time.Second, "driver closed after disabling", func() bool {
		o, c, _ := p.counts()
		return o == 1 && c == 1
	})
	_, _, r := p.counts()
	time.Sleep(3 * tick)
	if _, _, r2 := p.counts(); r2 != r {
		t.Fatalf("%d reads while disabled", r2-r)
	}
	if h := s.Health()[0]; h.Enabled || h.OK || h.Readings < 2 {
		t.Fatalf("health %+v", h)
	}
	if len(log.lines("sensor enabled")) != 1 || len(log.lines("sensor disabled")) != 1 {
		t.Fatal("enable/disable not logged once each")
	}
	p.checkMisuse(t)
}

func TestDisableWhileReadHungClosesAfterItReturns(t *testing.T) {
	// The read hangs until the sensor is disabled: a hang of fixed length
	// could end first on a slow machine, and the next read would follow.
	release := holdReads(t)
	p := &probe{readFn: release.read, started: make(chan int, 1)}
	log := &logBuf{}
	s := newTestScheduler(t, map[string]*probe{"a": p}, []Config{{Name: "a", Timeout: 30 * time.Millisecond}}, &sinkRec{}, log)
	running(t, s)
	<-p.started
	testkit.WaitFor(t, 5*time.Second, "the read abandoned", func() bool { return s.Health()[0].Failures == 1 })
	if err := s.SetEnabled("a", false); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 5*time.Second, "the loop to take the disable", func() bool { return len(log.lines("sensor disabled")) == 1 })
	if _, c, _ := p.counts(); c != 0 {
		t.Fatal("driver closed under the hung read")
	}
	release.open()
	testkit.WaitFor(t, 5*time.Second, "driver closed once the hung read returned", func() bool {
		_, c, _ := p.counts()
		return c == 1
	})
	if _, _, r := p.counts(); r != 1 {
		t.Fatalf("%d reads", r)
	}
	p.checkMisuse(t)
}

func TestShutdownWaitsForReadInProgress(t *testing.T) {
	p := &probe{hang: func(int) time.Duration { return 200 * time.Millisecond }, started: make(chan int, 1)}
	rec := &sinkRec{}
	s := newTestScheduler(t, map[string]*probe{"a": p}, []Config{{Name: "a", Timeout: 5 * time.Second}}, rec, nil)
	stop := running(t, s)
	<-p.started
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if p.isReading() {
		t.Fatal("Run returned while a read within its deadline was in progress")
	}
	if o, c, _ := p.counts(); o != 1 || c != 1 {
		t.Fatalf("opens=%d closes=%d after shutdown", o, c)
	}
	if len(rec.readings()) != 1 {
		t.Fatal("the read in progress at shutdown was not delivered")
	}
	p.checkMisuse(t)
}

func TestShutdownAbandonsHungRead(t *testing.T) {
	// The read hangs until the test lets it go, after Run returned: with
	// a hang of fixed length, a slow machine could reach the stop only
	// after the read ended on its own.
	release := holdReads(t)
	p := &probe{readFn: release.read, started: make(chan int, 1)}
	s := newTestScheduler(t, map[string]*probe{"a": p}, []Config{{Name: "a", Timeout: 50 * time.Millisecond}}, &sinkRec{}, nil)
	stop := running(t, s)
	<-p.started
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if !p.isReading() {
		t.Fatal("the held read ended before it was let go")
	}
	if _, c, _ := p.counts(); c != 0 {
		t.Fatal("driver closed under a read in progress")
	}
	release.open()
	testkit.WaitFor(t, 5*time.Second, "driver closed after the hung read returned", func() bool {
		_, c, _ := p.counts()
		return c == 1
	})
	p.checkMisuse(t)
}

func TestRunTwice(t *testing.T) {
	s := newTestScheduler(t, map[string]*probe{"a": {}}, []Config{{Name: "a"}}, &sinkRec{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Run(ctx); err != nil {
		t.Fatalf("Run on a cancelled context: %v", err)
	}
	if err := s.Run(context.Background()); !errors.Is(err, ErrRunTwice) {
		t.Fatalf("second Run: %v", err)
	}
}

func TestSinkErrorsKeepSchedulerRunning(t *testing.T) {
	rec := &sinkRec{err: func(n int) error {
		if n <= 3 {
			return errors.New("buffer: no space left on device")
		}
		return nil
	}}
	log := &logBuf{}
	s := newTestScheduler(t, map[string]*probe{"a": {}}, []Config{{Name: "a"}}, rec, log)
	running(t, s)
	testkit.WaitFor(t, 10*time.Second, "readings after the disk has room again", func() bool { return len(rec.readings()) >= 2 })
	h := s.Health()[0]
	if h.SinkErrors != 3 || h.Readings < 2 || !h.OK {
		t.Fatalf("health %+v", h)
	}
	if len(log.lines("buffer refused")) != 1 || len(log.lines("lost=3")) != 1 {
		t.Fatal("sink error run not logged as one start and one end line")
	}
}

func TestProgressStopsWhenSensorLoopWedges(t *testing.T) {
	block := make(chan struct{})
	var blocking sync.Once
	wedge := make(chan struct{})
	rec := &sinkRec{err: func(n int) error {
		if n == 3 {
			blocking.Do(func() { close(wedge) })
			<-block // the disk hangs
		}
		return nil
	}}
	log := &logBuf{}
	s := newTestScheduler(t, map[string]*probe{"a": {}}, []Config{{Name: "a", Timeout: 20 * time.Millisecond}}, rec, log)
	s.beatEvery = 20 * time.Millisecond
	s.stallGrace = 50 * time.Millisecond
	if !s.Progress().IsZero() {
		t.Fatal("progress before Run")
	}
	stop := running(t, s)
	p0 := time.Now()
	testkit.WaitFor(t, 5*time.Second, "progress advancing", func() bool { return s.Progress().After(p0) })
	<-wedge
	// After 3×20ms deadlines + 50ms grace the loop says it withholds
	// progress; from then on progress stands still.
	testkit.WaitFor(t, 10*time.Second, "the stuck loop noticed", func() bool {
		return len(log.lines("withholding scheduler progress")) == 1
	})
	wedged := s.Progress()
	time.Sleep(200 * time.Millisecond) // ten beats that must not feed progress
	if !s.Progress().Equal(wedged) {
		t.Fatal("progress advanced while a sensor loop was wedged in its sink")
	}
	close(block)
	testkit.WaitFor(t, 5*time.Second, "progress again after the sink returned", func() bool { return s.Progress().After(wedged) })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestControlErrors(t *testing.T) {
	s := newTestScheduler(t, map[string]*probe{"a": {}}, []Config{{Name: "a"}}, &sinkRec{}, nil)
	if err := s.SetInterval("nope", time.Second); !errors.Is(err, ErrUnknownSensor) || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("SetInterval on an unknown sensor: %v", err)
	}
	if err := s.SetEnabled("nope", true); !errors.Is(err, ErrUnknownSensor) {
		t.Fatalf("SetEnabled on an unknown sensor: %v", err)
	}
	for _, d := range []time.Duration{0, -time.Second, time.Millisecond, 25 * time.Hour} {
		err := s.SetInterval("a", d)
		if err == nil || !strings.HasPrefix(err.Error(), "sensors.a.interval: must be") {
			t.Fatalf("SetInterval(%v): %v", d, err)
		}
	}
	if h := s.Health()[0]; h.Interval != tick {
		t.Fatalf("a refused interval changed the sensor: %v", h.Interval)
	}
}

func TestNewSchedulerValidates(t *testing.T) {
	reg := probeRegistry(t, map[string]*probe{"a": {}})
	_, err := NewScheduler([]Config{{Name: "a", Driver: "probe"}}, Deps{Registry: reg, Sink: (&sinkRec{}).sink, Clock: newFakeClock()})
	if err == nil || !strings.Contains(err.Error(), "sensors[0] (a).interval: must be positive") {
		t.Fatalf("zero interval: %v", err)
	}
	_, err = NewScheduler([]Config{{Name: "a", Driver: "probe", Interval: time.Second}}, Deps{Registry: reg, Clock: newFakeClock()})
	if err == nil {
		t.Fatal("nil sink accepted")
	}
}

func TestHealthAndControlConcurrently(t *testing.T) {
	n := 6
	if testing.Short() {
		n = 3
	}
	probes := map[string]*probe{}
	var cfgs []Config
	for i := range n {
		name := fmt.Sprintf("s%d", i)
		probes[name] = &probe{readFn: func(k int) (Values, error) {
			if k%3 == 0 {
				return nil, errors.New("glitch")
			}
			return Values{"temperature": float64(k)}, nil
		}}
		cfgs = append(cfgs, Config{Name: name})
	}
	s := newTestScheduler(t, probes, cfgs, &sinkRec{}, nil)
	stop := running(t, s)
	var wg sync.WaitGroup
	end := time.Now().Add(600 * time.Millisecond)
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(end); i++ {
				name := fmt.Sprintf("s%d", (i+w)%n)
				switch i % 3 {
				case 0:
					if hs := s.Health(); len(hs) != n || hs[0].Name != "s0" {
						t.Errorf("health %v", hs)
						return
					}
				case 1:
					s.SetInterval(name, tick+time.Duration(i%5)*10*time.Millisecond)
				case 2:
					s.SetEnabled(name, i%2 == 0)
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	wg.Wait()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for _, p := range probes {
		p.checkMisuse(t)
		if o, c, _ := p.counts(); o != c {
			t.Errorf("opens=%d closes=%d after Run returned", o, c)
		}
	}
}
