package publisher

import (
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/kitd-dev/kitd/buffer"
	"github.com/kitd-dev/kitd/datasize"
	"github.com/kitd-dev/kitd/internal/testkit"
)

// lingerClock is a monotonic clock the test moves by hand.
type lingerClock struct{ ns atomic.Int64 }

func (f *lingerClock) now() time.Duration      { return time.Duration(f.ns.Load()) }
func (f *lingerClock) advance(d time.Duration) { f.ns.Add(int64(d)) }

// lingerPacker is packer with batch.max_delay on a clock the test moves.
func lingerPacker(t *testing.T, readings int, delay time.Duration, edit func(*Config)) (*Publisher, *buffer.Buffer, *lingerClock) {
	t.Helper()
	clk := &lingerClock{}
	p, buf, _ := packer(t, func(c *Config) {
		c.Batch.MaxReadings = readings
		c.Batch.MaxDelay = delay
		if edit != nil {
			edit(c)
		}
	}, nil)
	p.opt.lingerNow = clk.now
	return p, buf, clk
}

// nextLive appends nothing and asks for the next message as the drain loop
// does after a Notify.
func nextLive(t *testing.T, d *drainer) *message {
	t.Helper()
	d.live.dirty = true
	m, err := d.next()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// 25 live readings, batches of 10, max_delay 1 min: two full batches go at
// once, the last five wait exactly until a minute after the first of them
// was taken, and not a nanosecond less.
func TestLingerHoldsLiveReadingsUntilFullOrDue(t *testing.T) {
	p, buf, clk := lingerPacker(t, 10, time.Minute, nil)
	d := newDrainer(p)
	var msgs []*message
	for range 25 {
		appendReadings(t, buf, "air", 1)
		if m := nextLive(t, d); m != nil {
			msgs = append(msgs, m)
		}
		clk.advance(time.Second)
	}
	if len(msgs) != 2 || len(msgs[0].seqs) != 10 || len(msgs[1].seqs) != 10 {
		t.Fatalf("after 25 readings: %d messages, want 2 full batches of 10", len(msgs))
	}
	// The open batch started with reading 21, taken at 20 s; it is now 25 s.
	clk.advance(time.Minute - 5*time.Second - time.Nanosecond)
	if m := nextLive(t, d); m != nil {
		t.Fatalf("batch of %d sent before max_delay", len(m.seqs))
	}
	clk.advance(time.Nanosecond)
	m := nextLive(t, d)
	if m == nil || len(m.seqs) != 5 || m.seqs[0] != 21 {
		t.Fatalf("at max_delay: %+v, want readings 21-25", m)
	}
	if m := nextLive(t, d); m != nil {
		t.Fatalf("an extra message: %v", m.seqs)
	}
}

// A reading every 7 s for 10 minutes with max_delay 1 min: every reading
// goes within max_delay of being taken, in 9 messages instead of 86.
func TestLingerLatencyAndMessageCount(t *testing.T) {
	for _, c := range []struct {
		delay     time.Duration
		wantMsgs  int
		wantMaxIn int
	}{
		{0, 86, 1},
		{time.Minute, 9, 9}, // and 5 readings taken less than 1 min ago still wait
	} {
		p, buf, clk := lingerPacker(t, 100, c.delay, nil)
		d := newDrainer(p)
		taken := map[uint64]time.Duration{}
		var msgs, most int
		var worst time.Duration
		for s := time.Duration(0); s <= 10*time.Minute; s += time.Second {
			clk.ns.Store(int64(s))
			if s%(7*time.Second) == 0 {
				taken[appendReadings(t, buf, "air", 1)[0]] = s
			}
			for m := nextLive(t, d); m != nil; m = nextLive(t, d) {
				msgs++
				most = max(most, len(m.seqs))
				for _, q := range m.seqs {
					worst = max(worst, s-taken[q])
					delete(taken, q)
				}
			}
		}
		t.Logf("max_delay %v: %d messages, at most %d readings in one, longest wait %v, %d readings still lingering",
			c.delay, msgs, most, worst, len(taken))
		if worst > c.delay {
			t.Errorf("max_delay %v: a reading waited %v", c.delay, worst)
		}
		if msgs != c.wantMsgs || most != c.wantMaxIn {
			t.Errorf("max_delay %v: %d messages, at most %d readings each; want %d and %d", c.delay, msgs, most, c.wantMsgs, c.wantMaxIn)
		}
		if c.delay == 0 && len(taken) != 0 {
			t.Errorf("max_delay 0 left %d readings behind", len(taken))
		}
	}
}

// The byte limit ends a lingering batch as max_readings does: no message
// over max_bytes, no waiting once the next reading does not fit.
func TestLingerBoundedByMaxBytes(t *testing.T) {
	p, buf, _ := lingerPacker(t, 1000, time.Hour, func(c *Config) { c.Batch.MaxBytes = datasize.KiB })
	d := newDrainer(p)
	var msgs []*message
	for range 40 {
		appendReadings(t, buf, "air", 1)
		if m := nextLive(t, d); m != nil {
			msgs = append(msgs, m)
		}
	}
	if len(msgs) < 3 {
		t.Fatalf("%d messages from 40 readings under a 1 KiB limit, want the limit to end batches", len(msgs))
	}
	for i, m := range msgs {
		if len(m.payload) > int(datasize.KiB) {
			t.Errorf("message %d: %d bytes over the 1 KiB limit", i, len(m.payload))
		}
	}
}

// The backlog never lingers, and stopping sends the open batch at once.
func TestLingerSkipsBacklogAndFlushes(t *testing.T) {
	p, buf, _ := lingerPacker(t, 100, time.Hour, nil)
	old := appendReadings(t, buf, "old", 7)
	d := newDrainer(p)
	appendReadings(t, buf, "live", 3)
	m := nextLive(t, d)
	if m == nil || len(m.seqs) != len(old) || m.seqs[0] != old[0] {
		t.Fatalf("backlog: %+v, want its 7 readings at once", m)
	}
	if m := nextLive(t, d); m != nil {
		t.Fatalf("live readings sent before max_delay: %v", m.seqs)
	}
	d.flushing = true
	if m := nextLive(t, d); m == nil || len(m.seqs) != 3 {
		t.Fatalf("flush: %+v, want the 3 lingering readings", m)
	}
}

// A kill -9 while a batch lingers loses nothing: the open batch lives only
// in memory and its readings were never acknowledged, so the reopened
// buffer has them, and the next run sends them as backlog, at once.
func TestLingerCrashLosesNothing(t *testing.T) {
	dir := t.TempDir()
	open := func() *buffer.Buffer {
		cfg := buffer.DefaultConfig()
		cfg.Dir = dir
		cfg.Sync = buffer.SyncAlways
		cfg.MinFreeBytes = 0
		b, err := buffer.Open(cfg, buffer.Deps{})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cfg := DefaultConfig()
	cfg.Broker = "tcp://127.0.0.1:1"
	cfg.Batch.MaxReadings, cfg.Batch.MaxDelay = 100, time.Hour
	mk := func(buf *buffer.Buffer) *drainer {
		p, err := newPublisher(cfg, Deps{Device: kit, Buffer: buf, Clock: newTestClock(true)}, testOptions())
		if err != nil {
			t.Fatal(err)
		}
		return newDrainer(p)
	}
	buf := open()
	d := mk(buf)
	seqs := appendReadings(t, buf, "air", 5)
	if m := nextLive(t, d); m != nil {
		t.Fatalf("sent before max_delay: %v", m.seqs)
	}
	if d.open.b == nil || len(d.open.b.seqs) != 5 {
		t.Fatal("the readings are not in the open batch")
	}
	// The crash: the process is gone, the open batch with it. Only the
	// buffer's file lock (one process per directory) needs the Close; it
	// acknowledges nothing, and kill -9 durability is the buffer's own
	// crash tests' subject.
	if err := buf.Close(); err != nil {
		t.Fatal(err)
	}
	buf2 := open()
	defer buf2.Close()
	m := nextLive(t, mk(buf2))
	if m == nil || len(m.seqs) != 5 || m.seqs[0] != seqs[0] {
		t.Fatalf("after the crash: %+v, want readings %v at once", m, seqs)
	}
}

// End to end through the in-process broker: 120 readings with batches of
// 50 and max_delay 1 h arrive as 50, 50 and, when the agent stops, 20.
func TestLingerEndToEnd(t *testing.T) {
	broker := testkit.StartBroker(t, new(kitACL))
	kitPair := broker.Client(kit)
	buf := openBuffer(t)
	obs := newCollector(t, buf.Epoch())
	if err := broker.Server.Subscribe("kits/#", 1, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		obs.add(pk.TopicName, pk.Payload)
	}); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Broker = broker.URL
	cfg.CAFile, cfg.CertFile, cfg.KeyFile = broker.CA.CAFile, kitPair.CertFile, kitPair.KeyFile
	cfg.Batch.MaxReadings, cfg.Batch.MaxDelay = 50, time.Hour
	r := startPublisher(t, cfg, buf, testOptions())
	testkit.WaitFor(t, 20*time.Second, "connected", func() bool { return r.p.Stats().Connected })
	// One Append: all 120 are live or (if the drain had not started yet)
	// all backlog; either way the wire shows 50, 50, 20.
	seqs := appendReadings(t, buf, "air", 120)
	obs.waitFor(t, 20*time.Second, "two full batches", func() bool { return len(obs.messages) >= 2 })
	r.stop(t)
	obs.waitAll(t, seqs, 10*time.Second)
	obs.check(t, seqs)
	obs.mu.Lock()
	defer obs.mu.Unlock()
	var sizes []int
	for _, m := range obs.messages {
		sizes = append(sizes, len(m.Readings))
	}
	if len(sizes) != 3 || sizes[0] != 50 || sizes[1] != 50 || sizes[2] != 20 {
		t.Fatalf("batches of %v, want [50 50 20]", sizes)
	}
}
