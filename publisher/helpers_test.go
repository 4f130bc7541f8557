package publisher

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/kitd-dev/kitd/buffer"
	"github.com/kitd-dev/kitd/internal/testkit"
	"github.com/kitd-dev/kitd/telemetry"
)

const kit = "kit-1"

// testClock is a Clock the test sets: synced or not, a fixed boot id.
type testClock struct {
	mu     sync.Mutex
	synced bool
	start  time.Time
	monos  atomic.Int64 // Mono calls: the boot-time clock is a system call
}

func newTestClock(synced bool) *testClock { return &testClock{synced: synced, start: time.Now()} }

func (c *testClock) Now() time.Time { return time.Now() }
func (c *testClock) Mono() time.Duration {
	c.monos.Add(1)
	return time.Since(c.start) + time.Hour
}
func (c *testClock) Boot() uint64 { return 42 }
func (c *testClock) Synced() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.synced
}

// testOptions shrink the waits so failure paths run in seconds.
func testOptions() options {
	o := defaultOptions()
	o.backoffMin = 50 * time.Millisecond
	o.backoffFast = 500 * time.Millisecond
	o.backoffMax = 500 * time.Millisecond
	o.youngLoss = 3 * time.Second
	o.tick = 100 * time.Millisecond
	return o
}

func openBuffer(t testing.TB) *buffer.Buffer {
	t.Helper()
	cfg := buffer.DefaultConfig()
	cfg.Dir = t.TempDir()
	cfg.Sync = buffer.SyncNever
	cfg.MinFreeBytes = 0
	// Gap records as the agent makes them, so discards are explained in
	// band in every test.
	b, err := buffer.Open(cfg, buffer.Deps{GapRecord: func(g buffer.Gap) []byte {
		return telemetry.MarshalGap(nil, telemetry.Gap{From: g.From, To: g.To, Reason: g.Reason.String(), Time: time.Now()})
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// reading is the n-th test reading of sensor.
func reading(sensor string, n int) telemetry.Reading {
	return telemetry.Reading{
		Sensor: sensor,
		Time:   time.Now(),
		Boot:   42,
		Mono:   time.Hour,
		Values: map[string]float64{"temperature": 20 + float64(n%100)/10, "humidity": 40.5},
	}
}

// appendReadings appends n readings and returns their seqs.
func appendReadings(t testing.TB, b *buffer.Buffer, sensor string, n int) []uint64 {
	t.Helper()
	var seqs []uint64
	for n > 0 {
		k := min(n, 1000)
		payloads := make([][]byte, k)
		for i := range payloads {
			rec, err := telemetry.MarshalRecord(nil, reading(sensor, i))
			if err != nil {
				t.Fatal(err)
			}
			payloads[i] = rec
		}
		first, err := b.Append(payloads...)
		if err != nil {
			t.Fatal(err)
		}
		for i := range k {
			seqs = append(seqs, first+uint64(i))
		}
		n -= k
	}
	return seqs
}

// logSink collects log output for assertions.
type logSink struct{ testkit.LockedBuffer }

func (s *logSink) count(sub string) int { return strings.Count(s.String(), sub) }

func newLog(t testing.TB) (*slog.Logger, *logSink) {
	s := &logSink{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("publisher log:\n%s", s.String())
		}
	})
	return slog.New(slog.NewTextHandler(s, &slog.HandlerOptions{Level: slog.LevelDebug})), s
}

// running is a publisher under test.
type running struct {
	p      *Publisher
	log    *logSink
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned
	err    error         // what Run returned
}

// stop cancels Run and waits for it, failing if it overruns the shutdown
// timeout by more than a second.
func (r *running) stop(t testing.TB) {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		if r.err != nil {
			t.Fatalf("Run returned %v", r.err)
		}
	case <-time.After(r.p.cfg.ShutdownTimeout + 2*time.Second):
		t.Fatal("Run did not return within the shutdown timeout")
	}
}

func startPublisher(t testing.TB, cfg Config, buf *buffer.Buffer, opt options) *running {
	t.Helper()
	log, sink := newLog(t)
	p, err := newPublisher(cfg, Deps{Device: kit, Buffer: buf, Clock: newTestClock(true), Log: log}, opt)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{p: p, log: sink, cancel: cancel, done: make(chan struct{})}
	go func() {
		r.err = p.Run(ctx)
		close(r.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// wireReading is one reading as the wire contract says consumers see it.
type wireReading struct {
	Device string             `json:"device"`
	Epoch  string             `json:"epoch"`
	Sensor string             `json:"sensor"`
	Seq    *uint64            `json:"seq"`
	TS     string             `json:"ts"`
	Clock  string             `json:"clock"`
	Values map[string]float64 `json:"values"`
	Gap    *struct {
		From, To uint64
		Reason   string
	} `json:"gap"`
}

type wireMessage struct {
	wireReading
	Readings []wireReading `json:"readings"`
}

// collector is the observer's view: every telemetry seq it received, in
// arrival order, and every status message.
type collector struct {
	t     testing.TB
	epoch string

	mu       sync.Mutex
	count    map[uint64]int
	order    []uint64
	messages []wireMessage
	sizes    []int
	status   []string
	other    map[string][]string // payloads on other topics
	bad      []string
	gaps     map[uint64]string // seq explained by a gap record -> reason
	client   mqtt.Client       // the latest observer connection, to publish with
	changed  chan struct{}
}

// observe subscribes the broker's observer to every kit's telemetry and
// status, checking each message against the wire contract.
func observe(t testing.TB, brokerURL string, tlsCfg *tls.Config, epoch string) *collector {
	t.Helper()
	c := newCollector(t, epoch)
	c.subscribe(t, brokerURL, tlsCfg)
	return c
}

func newCollector(t testing.TB, epoch string) *collector {
	c := &collector{t: t, epoch: epoch, count: map[uint64]int{}, other: map[string][]string{}, changed: make(chan struct{}, 1)}
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, b := range c.bad {
			t.Errorf("message breaks the wire contract: %s", b)
		}
	})
	return c
}

// subscribe adds an observer connection feeding c (a second one after a
// broker restart, say).
func (c *collector) subscribe(t testing.TB, brokerURL string, tlsCfg *tls.Config) {
	t.Helper()
	c.subscribeWith(t, mqtt.NewClientOptions().AddBroker(brokerURL).SetTLSConfig(tlsCfg))
}

// subscribeWith is subscribe with the observer's connection options (a
// user name and password, say) given.
func (c *collector) subscribeWith(t testing.TB, o *mqtt.ClientOptions) {
	t.Helper()
	// No auto-reconnect: after a broker restart the test subscribes a new
	// observer at the moment it chooses, and two must not count twice.
	o.SetClientID(fmt.Sprintf("observer-%d", rand.Int64())).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetOrderMatters(true).
		SetProtocolVersion(4)
	cl := mqtt.NewClient(o)
	tok := cl.Connect()
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("observer connect: %v", tok.Error())
	}
	sub := cl.Subscribe("kits/#", 1, func(_ mqtt.Client, m mqtt.Message) { c.add(m.Topic(), m.Payload()) })
	if !sub.WaitTimeout(10*time.Second) || sub.Error() != nil {
		t.Fatalf("observer subscribe: %v", sub.Error())
	}
	// Wait for the subscription to be in place before the test goes on.
	deadline := time.Now().Add(10 * time.Second)
	for {
		id := fmt.Sprintf("probe-%d", rand.Int64())
		probe := cl.Publish("kits/probe/status", 1, false, id)
		probe.WaitTimeout(5 * time.Second)
		if c.sawStatus(id) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.mu.Lock()
	c.client = cl
	c.mu.Unlock()
	t.Cleanup(func() { cl.Disconnect(100) })
}

// publish sends as the observer (QoS 1) and waits for the PUBACK.
func (c *collector) publish(t testing.TB, topic, payload string) {
	t.Helper()
	c.mu.Lock()
	cl := c.client
	c.mu.Unlock()
	tok := cl.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("observer publish to %s: %v", topic, tok.Error())
	}
}

func (c *collector) add(topic string, payload []byte) {
	c.mu.Lock()
	defer func() {
		c.mu.Unlock()
		select {
		case c.changed <- struct{}{}:
		default:
		}
	}()
	if strings.HasSuffix(topic, "/status") {
		c.status = append(c.status, string(payload))
		return
	}
	if !strings.HasSuffix(topic, "/telemetry") {
		c.other[topic] = append(c.other[topic], string(payload))
		return
	}
	var m wireMessage
	if err := json.Unmarshal(payload, &m); err != nil {
		c.bad = append(c.bad, fmt.Sprintf("%s: %v", payload, err))
		return
	}
	c.messages = append(c.messages, m)
	c.sizes = append(c.sizes, len(payload))
	rs := m.Readings
	if len(rs) == 0 {
		rs = []wireReading{m.wireReading}
	} else if m.Sensor != "" || m.Seq != nil {
		c.bad = append(c.bad, "batch with top-level reading fields: "+string(payload))
	}
	if m.Device != kit || m.Epoch != c.epoch {
		c.bad = append(c.bad, fmt.Sprintf("device/epoch %q/%q, want %q/%q", m.Device, m.Epoch, kit, c.epoch))
	}
	for _, r := range rs {
		if r.Gap != nil && r.Seq != nil {
			if c.gaps == nil {
				c.gaps = map[uint64]string{}
			}
			for s := r.Gap.From; s <= r.Gap.To && s-r.Gap.From < 1<<20; s++ {
				c.gaps[s] = r.Gap.Reason
			}
			continue
		}
		if r.Seq == nil || r.Sensor == "" || len(r.Values) == 0 {
			c.bad = append(c.bad, "reading lacks seq, sensor or values: "+string(payload))
			continue
		}
		if _, err := time.Parse(telemetry.TimeLayout, r.TS); err != nil || len(r.TS) != len(telemetry.TimeLayout) {
			c.bad = append(c.bad, "ts not RFC 3339 UTC with milliseconds: "+r.TS)
		}
		c.count[*r.Seq]++
		c.order = append(c.order, *r.Seq)
	}
}

func (c *collector) sawStatus(s string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.status {
		if strings.Contains(st, s) {
			return true
		}
	}
	return false
}

func (c *collector) statuses() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.status...)
}

// waitFor polls cond (under the collector's lock) until it holds.
func (c *collector) waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		c.mu.Lock()
		ok := cond()
		c.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-c.changed:
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
	}
}

// waitAll waits until every seq was received at least once.
func (c *collector) waitAll(t testing.TB, seqs []uint64, timeout time.Duration) {
	t.Helper()
	c.waitFor(t, timeout, fmt.Sprintf("%d readings", len(seqs)), func() bool {
		for _, s := range seqs {
			if c.count[s] == 0 {
				return false
			}
		}
		return true
	})
}

// check asserts every seq arrived at least once and reports (and returns)
// the duplicates.
func (c *collector) check(t testing.TB, seqs []uint64) (dups int) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	missing := 0
	for _, s := range seqs {
		switch n := c.count[s]; {
		case n == 0:
			missing++
			if missing <= 10 {
				t.Errorf("seq %d never delivered", s)
			}
		case n > 1:
			dups += n - 1
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d readings never delivered", missing, len(seqs))
	}
	t.Logf("%d readings delivered at least once, %d duplicates, %d messages", len(seqs)-missing, dups, len(c.messages))
	return dups
}

// waitPending waits until the buffer holds n unacknowledged records: acks
// reach the buffer only after PUBACK, so this follows the broker.
func waitPending(t testing.TB, buf *buffer.Buffer, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p := buf.Stats().Pending
		if p == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("buffer has %d pending records, want %d", p, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// appender appends one reading every interval until stopped, like a
// scheduler that keeps sampling whatever the network does.
type appender struct {
	mu   sync.Mutex
	seqs []uint64
	stop chan struct{}
	done chan struct{}
}

func startAppender(t *testing.T, buf *buffer.Buffer, every time.Duration) *appender {
	a := &appender{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(a.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-a.stop:
				return
			case <-tick.C:
			}
			s := appendReadings(t, buf, "sim", 1)
			a.mu.Lock()
			a.seqs = append(a.seqs, s...)
			a.mu.Unlock()
		}
	}()
	t.Cleanup(a.halt)
	return a
}

func (a *appender) halt() {
	select {
	case <-a.stop:
	default:
		close(a.stop)
	}
	<-a.done
}

func (a *appender) taken() []uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]uint64(nil), a.seqs...)
}
