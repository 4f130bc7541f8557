package publisher

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/buffer"
	"github.com/kitd-dev/kitd/datasize"
	"github.com/kitd-dev/kitd/telemetry"
)

// packer is a publisher that never connects, to drive the packing of
// messages from a real buffer directly.
func packer(t *testing.T, edit func(*Config), clk telemetry.Clock) (*Publisher, *buffer.Buffer, *logSink) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Broker = "tcp://127.0.0.1:1"
	if edit != nil {
		edit(&cfg)
	}
	buf := openBuffer(t)
	log, sink := newLog(t)
	if clk == nil {
		clk = newTestClock(true)
	}
	p, err := newPublisher(cfg, Deps{Device: kit, Buffer: buf, Clock: clk, Log: log}, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	return p, buf, sink
}

func newDrainer(p *Publisher) *drainer {
	live := p.buf.NextSeq()
	return &drainer{
		p:       p,
		live:    &cursor{r: p.buf.Reader(live, 0), live: true, dirty: true},
		backlog: &cursor{r: p.buf.Reader(0, live), done: live <= 1},
		epoch:   p.buf.Epoch(),
	}
}

// drainAll packs every message there is.
func drainAll(t *testing.T, d *drainer) []*message {
	t.Helper()
	var out []*message
	for {
		m, err := d.next()
		if err != nil {
			t.Fatal(err)
		}
		if m == nil {
			return out
		}
		out = append(out, m)
	}
}

func TestPackSkipsUndecodableRecords(t *testing.T) {
	p, buf, sink := packer(t, nil, nil)
	good := appendReadings(t, buf, "air", 3)
	if _, err := buf.Append([]byte("not a record"), []byte("not one either")); err != nil {
		t.Fatal(err)
	}
	good = append(good, appendReadings(t, buf, "air", 2)...)
	msgs := drainAll(t, newDrainer(p))
	var got []uint64
	for _, m := range msgs {
		got = append(got, m.seqs...)
	}
	if fmt.Sprint(got) != fmt.Sprint(good) {
		t.Fatalf("packed seqs %v, want %v", got, good)
	}
	if st := p.Stats(); st.Discarded != 2 {
		t.Fatalf("discarded %d, want 2", st.Discarded)
	}
	if n := sink.count("discarding a buffered record that does not decode"); n != 1 {
		t.Fatalf("undecodable records logged %d times, want once (repeats folded)", n)
	}
	// The discarded seqs are explained in band: the buffer appends a gap
	// record for them, which goes out like a reading.
	bad := good[2] + 1
	explained := map[uint64]bool{}
	for deadline := time.Now().Add(10 * time.Second); len(explained) < 2 && time.Now().Before(deadline); {
		// The bad records are settled, so they never come back on the
		// next connection; the good ones (unacknowledged here) do.
		for _, m := range drainAll(t, newDrainer(p)) {
			var g struct {
				Seq uint64
				Gap *struct {
					From, To uint64
					Reason   string
				}
			}
			if err := json.Unmarshal(m.payload, &g); err != nil {
				t.Fatal(err)
			}
			if g.Gap != nil && g.Gap.Reason == "discarded" && g.Seq > good[len(good)-1] {
				for s := g.Gap.From; s <= g.Gap.To; s++ {
					explained[s] = true
				}
			}
			for _, s := range m.seqs {
				if s == bad || s == bad+1 {
					t.Fatalf("discarded seq %d read again", s)
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !explained[bad] || !explained[bad+1] || len(explained) != 2 {
		t.Fatalf("gap records after the readings explain %v, want exactly %d and %d as discarded", explained, bad, bad+1)
	}
	if st := buf.Stats(); st.Lost["discarded"] != 2 || st.Dropped != 2 {
		t.Fatalf("discards not counted as lost: %+v", st)
	}
}

func TestPackBatchesByCountAndBytes(t *testing.T) {
	p, buf, _ := packer(t, func(c *Config) {
		c.Batch.MaxReadings = 10
		c.Batch.MaxBytes = 2 * datasize.KiB
	}, nil)
	seqs := appendReadings(t, buf, "air", 95)
	recs, err := buf.Reader(0, 0).Next(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	bySeq := map[uint64]telemetry.RecordView{}
	for _, r := range recs {
		v, err := telemetry.ParseRecord(r.Data)
		if err != nil {
			t.Fatal(err)
		}
		bySeq[r.Seq] = v
	}
	msgs := drainAll(t, newDrainer(p))
	var got []uint64
	for _, m := range msgs {
		// Built a reading at a time, readings taken back out at the
		// limit, yet byte for byte the batch of its seqs framed whole.
		want := telemetry.AppendBatchStart(nil, kit, buf.Epoch())
		for i, s := range m.seqs {
			if i > 0 {
				want = append(want, ',')
			}
			v := bySeq[s]
			want = telemetry.AppendRecordItem(want, s, &v)
		}
		if want = telemetry.AppendBatchEnd(want); string(want) != string(m.payload) {
			t.Fatalf("packed\n%s\nwant\n%s", m.payload, want)
		}
		if len(m.payload) > 2048 {
			t.Errorf("%d-byte message over 2KiB", len(m.payload))
		}
		var w wireMessage
		if err := json.Unmarshal(m.payload, &w); err != nil {
			t.Fatalf("%v: %s", err, m.payload)
		}
		if len(w.Readings) != len(m.seqs) || len(w.Readings) > 10 {
			t.Fatalf("batch of %d readings for %d seqs", len(w.Readings), len(m.seqs))
		}
		for i, r := range w.Readings {
			if *r.Seq != m.seqs[i] {
				t.Fatalf("reading %d has seq %d, message carries %d", i, *r.Seq, m.seqs[i])
			}
		}
		got = append(got, m.seqs...)
	}
	if fmt.Sprint(got) != fmt.Sprint(seqs) {
		t.Fatalf("seqs %v, want %v", got, seqs)
	}
	if len(msgs) != 10 {
		t.Fatalf("%d messages for 95 readings at 10 per batch, want 10", len(msgs))
	}

	// Live change to a count the byte limit overrides.
	if err := p.SetBatchMaxReadings(500); err != nil {
		t.Fatal(err)
	}
	appendReadings(t, buf, "air", 95)
	d := newDrainer(p)
	d.backlog.done = true // only what is new
	d.live = &cursor{r: buf.Reader(seqs[len(seqs)-1]+1, 0), live: true, dirty: true}
	msgs = drainAll(t, d)
	for _, m := range msgs[:len(msgs)-1] {
		if len(m.payload) > 2048 || len(m.payload) < 2048-300 {
			t.Errorf("batch of %d bytes not packed up to the 2KiB limit", len(m.payload))
		}
	}
}

func TestSetBatchMaxReadingsValidates(t *testing.T) {
	p, _, _ := packer(t, nil, nil)
	for _, n := range []int{0, -1, MaxBatchReadings + 1} {
		err := p.SetBatchMaxReadings(n)
		if err == nil || !strings.HasPrefix(err.Error(), "batch.max_readings: must be between 1 and 1000") {
			t.Errorf("%d: %v", n, err)
		}
	}
	if err := p.SetBatchMaxReadings(1); err != nil {
		t.Error(err)
	}
}

func TestPackDropsOversizedReading(t *testing.T) {
	for _, batch := range []int{1, 50} {
		t.Run(fmt.Sprint("batch ", batch), func(t *testing.T) {
			p, buf, sink := packer(t, func(c *Config) {
				c.Batch.MaxReadings = batch
				c.Batch.MaxBytes = 1 * datasize.KiB
			}, nil)
			huge := reading("wide", 0)
			for i := 0; i < 60; i++ {
				huge.Values[fmt.Sprintf("quantity_number_%02d", i)] = float64(i)
			}
			rec, err := telemetry.MarshalRecord(nil, huge)
			if err != nil {
				t.Fatal(err)
			}
			a := appendReadings(t, buf, "air", 2)
			hugeSeq, err := buf.Append(rec)
			if err != nil {
				t.Fatal(err)
			}
			b := appendReadings(t, buf, "air", 2)
			var got []uint64
			for _, m := range drainAll(t, newDrainer(p)) {
				got = append(got, m.seqs...)
			}
			if want := fmt.Sprint(append(a, b...)); fmt.Sprint(got) != want {
				t.Fatalf("packed %v, want %v", got, want)
			}
			// Pending: the 4 readings, and the gap record for the
			// discarded one once the buffer has written it.
			if st := buf.Stats(); p.Stats().Discarded != 1 || st.Lost["discarded"] != 1 || st.Pending < 4 || st.Pending > 5 {
				t.Fatalf("discarded %d, pending %d, lost %v", p.Stats().Discarded, st.Pending, st.Lost)
			}
			if sink.count("discarding a reading larger than batch.max_bytes") != 1 {
				t.Fatal("oversized reading not logged")
			}
			// The size logged is the reading's own message, as it
			// would have gone alone.
			v, err := telemetry.ParseRecord(rec)
			if err != nil {
				t.Fatal(err)
			}
			alone := telemetry.AppendRecordMessage(nil, kit, buf.Epoch(), hugeSeq, &v)
			if batch > 1 {
				alone = telemetry.AppendBatchStart(nil, kit, buf.Epoch())
				alone = telemetry.AppendBatchEnd(telemetry.AppendRecordItem(alone, hugeSeq, &v))
			}
			if want := fmt.Sprintf(" bytes=%d ", len(alone)); !strings.Contains(sink.String(), want) {
				t.Fatalf("log does not say%s:\n%s", want, sink.String())
			}
		})
	}
}

// Readings taken before the clock synced are re-stamped at send time once
// it has, from the monotonic clock; readings from another boot cannot be.
func TestPackRestampsUnsyncedReadings(t *testing.T) {
	clk := newTestClock(false)
	p, buf, _ := packer(t, nil, clk)
	taken := clk.Mono()
	r := reading("air", 0)
	r.Time = time.Date(1970, 1, 1, 0, 5, 0, 0, time.UTC) // a Pi before NTP
	r.Clock = telemetry.ClockUnsynced
	r.Boot, r.Mono = clk.Boot(), taken
	other := r
	other.Boot = 7
	for _, rd := range []telemetry.Reading{r, other} {
		rec, _ := telemetry.MarshalRecord(nil, rd)
		if _, err := buf.Append(rec); err != nil {
			t.Fatal(err)
		}
	}
	decode := func(m *message) wireMessage {
		var w wireMessage
		if err := json.Unmarshal(m.payload, &w); err != nil {
			t.Fatal(err)
		}
		return w
	}

	msgs := drainAll(t, newDrainer(p))
	if w := decode(msgs[0]); w.Clock != "unsynced" || !strings.HasPrefix(w.TS, "1970-01-01T00:05:00") {
		t.Fatalf("clock still unsynced: sent %s %q, want the original stamp", w.TS, w.Clock)
	}
	if n := clk.monos.Load(); n != 1 {
		t.Fatalf("the boot-time clock was read %d times while unsynced besides the test's own, want 0", n-1)
	}

	clk.mu.Lock()
	clk.synced = true
	clk.mu.Unlock()
	msgs = drainAll(t, newDrainer(p)) // nothing was acked: sent again
	w := decode(msgs[0])
	ts, err := time.Parse(telemetry.TimeLayout, w.TS)
	if err != nil {
		t.Fatal(err)
	}
	want := time.Now().Add(-(clk.Mono() - taken))
	if w.Clock != "corrected" || ts.Sub(want).Abs() > time.Second {
		t.Fatalf("re-stamped to %s %q, want about %s corrected", w.TS, w.Clock, want.UTC().Format(telemetry.TimeLayout))
	}
	if w := decode(msgs[1]); w.Clock != "unsynced" {
		t.Fatalf("reading from another boot became %q", w.Clock)
	}
}

func TestNewRejects(t *testing.T) {
	buf := openBuffer(t)
	cfg := DefaultConfig()
	cfg.Broker = "tcp://127.0.0.1:1883"
	for _, tc := range []struct {
		device string
		want   string
	}{
		// The rule is telemetry.CheckDevice's; this checks it is applied.
		{"", "device.id: required"},
		{"kits/1", "device.id: \"kits/1\": use 1-128"},
		{"kit+", "use 1-128"},
	} {
		if _, err := New(cfg, Deps{Device: tc.device, Buffer: buf, Clock: newTestClock(true)}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("device %q: %v, want %q", tc.device, err, tc.want)
		}
	}
	bad := cfg
	bad.Broker = "ftp://x"
	if _, err := New(bad, Deps{Device: kit, Buffer: buf, Clock: newTestClock(true)}); err == nil || !strings.HasPrefix(err.Error(), "broker: ") {
		t.Errorf("bad config: %v", err)
	}
	if _, err := New(cfg, Deps{Device: kit, Buffer: nil, Clock: newTestClock(true)}); err == nil {
		t.Error("nil buffer accepted")
	}
}

// TestBacklogNotStarved: a busy kit has a live reading ready for every
// message slot; the backlog must still get every other message, packed
// full, or it never drains under a message-rate limit.
func TestBacklogNotStarved(t *testing.T) {
	p, buf, _ := packer(t, func(c *Config) { c.Batch.MaxReadings = 100 }, nil)
	backlog := appendReadings(t, buf, "old", 1000)
	d := newDrainer(p)
	var drained, live int
	for i := 0; i < 20; i++ {
		appendReadings(t, buf, "live", 1)
		d.live.dirty = true
		m, err := d.next()
		if err != nil || m == nil {
			t.Fatalf("message %d: %v %v", i, m, err)
		}
		if m.seqs[0] <= backlog[len(backlog)-1] {
			drained += len(m.seqs)
		} else {
			live += len(m.seqs)
		}
	}
	if drained != len(backlog) || live < 10 {
		t.Fatalf("in 20 messages %d of %d backlog readings and %d live ones went; want the whole backlog in full batches beside the live ones", drained, len(backlog), live)
	}
}
