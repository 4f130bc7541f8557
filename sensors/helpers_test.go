package sensors

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/internal/testkit"
	"github.com/kitd-dev/kitd/telemetry"
)

// fakeClock is a Clock the test sets; it moves only when told.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	mono   time.Duration
	synced bool
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC), mono: time.Hour, synced: true}
}

func (c *fakeClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Mono() time.Duration { c.mu.Lock(); defer c.mu.Unlock(); return c.mono }
func (c *fakeClock) Boot() uint64        { return 0xb007 }
func (c *fakeClock) Synced() bool        { c.mu.Lock(); defer c.mu.Unlock(); return c.synced }

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.mono += d
}

func (c *fakeClock) SetSynced(b bool) { c.mu.Lock(); defer c.mu.Unlock(); c.synced = b }

// probe is a fake chip that records how it is used and fails the test's
// way. It detects two users: a second open while a driver is open, a
// read while another read runs, a read on a closed driver.
type probe struct {
	mu         sync.Mutex
	opens      int
	closes     int
	reads      int // reads started
	open       bool
	reading    bool
	misuse     []string
	openErr    error
	openHang   time.Duration               // sleep in Open, ignoring ctx
	openHold   chan struct{}               // if set, Open waits until it is closed, ignoring ctx
	readFn     func(n int) (Values, error) // n counts reads from 1
	hang       func(n int) time.Duration   // sleep ignoring ctx
	readStarts []time.Time
	started    chan int // if set, gets n as read n starts (non-blocking)
	closeHook  func()   // if set, runs as Close starts (outside the lock)
}

func (p *probe) Open(ctx context.Context) (Driver, error) {
	p.mu.Lock()
	hang, hold := p.openHang, p.openHold
	p.mu.Unlock()
	time.Sleep(hang)
	if hold != nil {
		<-hold
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.openErr != nil {
		return nil, p.openErr
	}
	if p.open {
		p.misuse = append(p.misuse, "open while open")
	}
	p.open = true
	p.opens++
	return &probeDriver{p: p}, nil
}

type probeDriver struct {
	p      *probe
	closed bool // guarded by p.mu
}

func (d *probeDriver) Read(ctx context.Context) (Values, error) {
	p := d.p
	p.mu.Lock()
	if d.closed {
		p.misuse = append(p.misuse, "read after close")
	}
	if p.reading {
		p.misuse = append(p.misuse, "two reads at once")
	}
	p.reading = true
	p.reads++
	n := p.reads
	p.readStarts = append(p.readStarts, time.Now())
	hang, readFn, started := p.hang, p.readFn, p.started
	p.mu.Unlock()
	if started != nil {
		select {
		case started <- n:
		default:
		}
	}
	if hang != nil {
		time.Sleep(hang(n))
	}
	defer func() {
		p.mu.Lock()
		p.reading = false
		p.mu.Unlock()
	}()
	if readFn == nil {
		return Values{"temperature": 21.5}, nil
	}
	return readFn(n)
}

func (d *probeDriver) Close() error {
	p := d.p
	p.mu.Lock()
	hook := p.closeHook
	p.mu.Unlock()
	if hook != nil {
		hook()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if d.closed {
		p.misuse = append(p.misuse, "closed twice")
	}
	if p.reading {
		p.misuse = append(p.misuse, "close during read")
	}
	d.closed = true
	p.open = false
	p.closes++
	return nil
}

// counts returns opens, closes, reads.
func (p *probe) counts() (int, int, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.opens, p.closes, p.reads
}

func (p *probe) isReading() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reading
}

func (p *probe) checkMisuse(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.misuse) > 0 {
		t.Errorf("device misused: %v", p.misuse)
	}
}

// probeKind is a driver kind whose sensors are the probes by sensor name.
func probeKind(probes map[string]*probe) Kind {
	return Kind{
		Name:    "probe",
		Timeout: time.Second,
		Prepare: func(name string, o *Options) (Opener, error) {
			p, ok := probes[name]
			if !ok {
				o.Fail("name", "no probe for %q", name)
			}
			o.Int("n", 0) // an option, so unknown-option rules can be tested
			return func(ctx context.Context) (Driver, error) { return p.Open(ctx) }, o.Done()
		},
	}
}

func probeRegistry(t *testing.T, probes map[string]*probe) *Registry {
	t.Helper()
	reg, err := NewRegistry(probeKind(probes))
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// sinkRec collects readings.
type sinkRec struct {
	mu  sync.Mutex
	rs  []telemetry.Reading
	err func(n int) error // n counts sink calls from 1
	n   int
}

func (s *sinkRec) sink(r telemetry.Reading) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	if s.err != nil {
		if err := s.err(s.n); err != nil {
			return err
		}
	}
	s.rs = append(s.rs, r)
	return nil
}

func (s *sinkRec) readings() []telemetry.Reading {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]telemetry.Reading(nil), s.rs...)
}

func (s *sinkRec) countFor(name string) int {
	n := 0
	for _, r := range s.readings() {
		if r.Sensor == name {
			n++
		}
	}
	return n
}

// logBuf is a concurrency-safe slog text sink for counting log lines.
type logBuf struct{ testkit.LockedBuffer }

func (l *logBuf) lines(substr string) []string {
	var out []string
	for _, line := range strings.Split(l.String(), "\n") {
		if line != "" && strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return out
}

func (l *logBuf) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func ptr[T any](v T) *T { return &v }

// running starts s.Run and returns a stop func that cancels it and
// returns Run's error, failing the test if Run does not return in limit.
func running(t *testing.T, s *Scheduler) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				err = errors.New("Run did not return within 30s of cancel")
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

// heldReads makes reads hang until open is called (or the test ends):
// a hang the test ends, where a fixed one could end before the test got
// round to what it wanted to see during it.
type heldReads struct {
	ch   chan struct{}
	once sync.Once
}

func holdReads(t *testing.T) *heldReads {
	h := &heldReads{ch: make(chan struct{})}
	t.Cleanup(h.open)
	return h
}

func (h *heldReads) open() { h.once.Do(func() { close(h.ch) }) }

func (h *heldReads) read(int) (Values, error) {
	<-h.ch
	return Values{"temperature": 21.5}, nil
}

// waitFailures is for a probe read that must end only after the scheduler
// abandoned it: it waits until failures() reaches n. A minute at most, so
// a broken scheduler fails the test instead of hanging it (the read then
// returns, and its value shows up where it must not).
func waitFailures(failures func() int, n int) {
	deadline := time.Now().Add(time.Minute)
	for failures() < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
}
