package publisher

import (
	"context"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/kitd-dev/kitd/buffer"
	"github.com/kitd-dev/kitd/telemetry"
)

// readChunkBytes bounds one Reader.Next: enough for a full batch of large
// readings without holding megabytes of a backlog in memory.
const readChunkBytes = 256 << 10

// cursor is one buffer Reader and the records read ahead of sending.
type cursor struct {
	r *buffer.Reader
	// recs[head:] are read and not yet packed, their Data in data. Both
	// are Reader.NextInto's memory, reused once every record has been
	// packed (messages hold copies), so reading allocates nothing.
	recs []buffer.Record
	data []byte
	head int
	// live cursors have no end: dirty says an Append may have added
	// something since Next last came back empty. The backlog cursor ends
	// (done) when its range is exhausted.
	live  bool
	dirty bool
	done  bool
}

// message is a packed payload and the seqs it carries.
type message struct {
	payload []byte
	seqs    []uint64
	topic   string // "" is the telemetry topic
}

// flight is a message handed to paho and waiting for its PUBACK.
type flight struct {
	payload []byte
	size    int // of payload, which the pump lets go of
	seqs    []uint64
	topic   string // "" is the telemetry topic
	sent    time.Time
	// tok is set by the pump before it closes ready.
	tok   mqtt.Token
	ready chan struct{}
}

// done reports whether the flight's outcome is known.
func (f *flight) done() bool {
	select {
	case <-f.ready:
	default:
		return false
	}
	select {
	case <-f.tok.Done():
		return true
	default:
		return false
	}
}

// wait is what to block on for the flight's outcome.
func (f *flight) wait() <-chan struct{} {
	select {
	case <-f.ready:
		return f.tok.Done()
	default:
		return f.ready
	}
}

// pump calls paho's Publish for the drain loop. paho's Publish can block
// for its whole write timeout when the connection dies under it (the
// status still says connected while the workers that would take the packet
// are gone), so the loop that watches for lost connections, overdue acks
// and shutdown never calls it itself.
func pump(client mqtt.Client, topic string, in <-chan *flight) {
	for f := range in {
		t := topic
		if f.topic != "" {
			t = f.topic
		}
		f.tok = client.Publish(t, 1, false, f.payload)
		f.payload = nil
		close(f.ready)
	}
}

// drainer delivers the buffer over one connection.
type drainer struct {
	p       *Publisher
	c       *conn
	live    *cursor
	backlog *cursor
	window  []*flight // oldest first
	pumpC   chan *flight
	ready   *message // packed, waiting for the rate limiter
	ackBuf  []uint64
	epoch   string
	// lastLive: the last message packed was live; the backlog goes next
	lastLive bool
	// open is the live batch waiting for batch.max_delay (linger.go);
	// flushing sends it at once.
	open     lingering
	flushing bool

	// clock readings for re-stamping, taken at most once per pack
	clkTaken bool
	synced   bool
	now      time.Time
	mono     time.Duration
	boot     uint64
}

// drain delivers until the connection is lost (returning why), an ack is
// overdue (errAckTimeout, after cutting the connection), or ctx ends and
// the flush is over (errStopping, connection left open for the goodbye).
//
// Live first: the seqs from NextSeq at connect on are read by their own
// cursor, and every message slot goes to it while it has anything; the
// backlog below that point is sent when the live cursor is empty. Fresh
// readings thus wait at most for the in-flight window, never behind the
// backlog, and consumers order by seq.
//
// The flush after a stop is timed from stoppedAt when it says (nil: from
// when the drainer sees the stop).
func (p *Publisher) drain(ctx context.Context, c *conn, stoppedAt func() *time.Time) error {
	liveFrom := p.buf.NextSeq()
	d := &drainer{
		p:       p,
		c:       c,
		live:    &cursor{r: p.buf.Reader(liveFrom, 0), live: true, dirty: true},
		backlog: &cursor{r: p.buf.Reader(0, liveFrom), done: liveFrom <= 1},
		window:  make([]*flight, 0, p.cfg.MaxInflight),
		pumpC:   make(chan *flight, p.cfg.MaxInflight),
		epoch:   p.buf.Epoch(),
	}
	go pump(c.client, p.telemetryTopic, d.pumpC)
	defer func() {
		close(d.pumpC)
		d.reapAll()
		d.stopLinger()
	}()
	return d.run(ctx, stoppedAt)
}

func (d *drainer) run(ctx context.Context, stoppedAt func() *time.Time) error {
	p, c := d.p, d.c
	ackTimeout := p.cfg.ackTimeout()
	tick := time.NewTicker(min(p.opt.tick, ackTimeout/2))
	defer tick.Stop()
	limTimer := time.NewTimer(time.Hour)
	limTimer.Stop()
	defer limTimer.Stop()
	notify := p.buf.Notify()
	stopping := ctx.Done()
	var flushing bool
	var stopSending, flushEnd time.Time

	for {
		p.touch()
		if err := d.reap(); err != nil {
			c.kill(err)
			return err
		}
		if c.isLost() {
			return c.err()
		}
		now := time.Now()
		if len(d.window) > 0 && now.Sub(d.window[0].sent) > ackTimeout {
			c.kill(errAckTimeout)
			return errAckTimeout
		}
		select {
		case <-notify:
			d.live.dirty = true
		default:
		}
		if !flushing {
			select {
			case <-stopping:
				// Stopping: keep sending what is there for most of the
				// shutdown budget, then wait for the acks of what is in
				// flight; the rest is left for the goodbye and disconnect.
				flushing, stopping = true, nil
				d.flushing = true
				budget := p.cfg.ShutdownTimeout
				from := now
				if t := stoppedAt(); t != nil && t.Before(now) {
					from = *t
				}
				stopSending, flushEnd = from.Add(budget*6/10), from.Add(budget*8/10)
			default:
			}
		}
		canSend := !flushing || now.Before(stopSending)
		var limWait <-chan time.Time
		// Pack the next message even while the window is full, so it goes
		// out the moment an ack frees a slot. A live reading arriving
		// meanwhile waits behind at most this one message.
		if canSend && d.ready == nil {
			m, err := d.next()
			if err != nil {
				return err
			}
			d.ready = m
		}
		if canSend && len(d.window) < cap(d.window) {
			if d.ready != nil {
				if wait := p.lim.take(); wait > 0 {
					limTimer.Reset(wait)
					limWait = limTimer.C
				} else {
					d.publish(now)
					continue
				}
			}
		}
		if flushing && len(d.window) == 0 && (d.ready == nil || !canSend) {
			return errStopping
		}
		if flushing && !now.Before(flushEnd) {
			return errStopping
		}
		var headDone <-chan struct{}
		if len(d.window) > 0 {
			headDone = d.window[0].wait()
		}
		select {
		case <-headDone:
		case <-d.lingerWake():
		case <-notify:
			d.live.dirty = true
		case <-tick.C:
		case <-limWait:
		case <-c.lost:
		case <-stopping:
			// handled at the top of the loop
		}
		if limWait != nil {
			limTimer.Stop()
		}
	}
}

// publish hands the ready message to paho.
func (d *drainer) publish(now time.Time) {
	m := d.ready
	d.ready = nil
	topic := d.p.telemetryTopic
	if m.topic != "" {
		topic = m.topic
	}
	d.c.notePublish(topic)
	f := &flight{payload: m.payload, size: len(m.payload), seqs: m.seqs, topic: m.topic, sent: now, ready: make(chan struct{})}
	d.window = append(d.window, f)
	d.pumpC <- f // never blocks: the window bounds what is queued
}

// reap acknowledges to the buffer every completed message at the head of
// the window, in one Ack. A failed token means the connection is gone.
func (d *drainer) reap() error {
	n := 0
	d.ackBuf = d.ackBuf[:0]
	var failed error
	for _, f := range d.window {
		if !f.done() {
			break
		}
		if err := f.tok.Error(); err != nil {
			failed = err
			break
		}
		d.ackBuf = append(d.ackBuf, f.seqs...)
		d.p.maxAcked = max(d.p.maxAcked, f.size)
		n++
	}
	if n > 0 {
		d.ack(d.ackBuf, int64(n))
		copy(d.window, d.window[n:])
		clear(d.window[len(d.window)-n:])
		d.window = d.window[:len(d.window)-n]
	}
	return failed
}

// reapAll acknowledges whatever completed in the window, in any order,
// when the connection ends: a PUBACK that made it saves a duplicate.
func (d *drainer) reapAll() {
	d.ackBuf = d.ackBuf[:0]
	var msgs int64
	var head *flight // the oldest message the broker did not acknowledge
	for _, f := range d.window {
		if f.done() && f.tok.Error() == nil {
			d.ackBuf = append(d.ackBuf, f.seqs...)
			d.p.maxAcked = max(d.p.maxAcked, f.size)
			msgs++
		} else if head == nil {
			head = f
		}
	}
	if msgs > 0 {
		d.ack(d.ackBuf, msgs)
	}
	d.window = nil
	d.p.oversized = 0
	if d.c.isLost() {
		d.noteUnacked(head)
	}
}

// Oversize detection: a loss counts as a strike against the message at the
// head of the window when that message was sent just before the loss and is
// larger than anything the broker ever acknowledged; a broker that merely
// flaps, or a message of a size it took before, never strikes.
const (
	oversizeWindow  = 5 * time.Second
	oversizeStrikes = 3
	// A single reading is given up only after more strikes when the
	// broker has acknowledged nothing at all yet (then no size is known
	// to be good).
	oversizeStrikesBlind = 6
	// No broker limits packets to less than this: a smaller message
	// unacknowledged at a loss is a policy or a flapping broker, not a
	// size problem (AWS IoT drops the connection on a denied publish).
	minPlausiblePacket = 1024
)

// noteUnacked looks at the message left unacknowledged by a lost connection.
// After enough strikes against the same message, a batch makes the
// publisher pack smaller messages from then on, and a single reading is
// discarded (explained in band): a message the broker will never take must
// not stall delivery forever.
func (d *drainer) noteUnacked(head *flight) {
	p := d.p
	if head == nil || head.size <= max(p.maxAcked, minPlausiblePacket) || time.Since(head.sent) > oversizeWindow {
		p.strikes = 0
		return
	}
	if head.seqs[0] != p.suspect {
		p.suspect, p.strikes = head.seqs[0], 0
	}
	p.strikes++
	p.oversized = head.size
	need := oversizeStrikes
	if p.maxAcked == 0 && len(head.seqs) == 1 {
		need = oversizeStrikesBlind
	}
	if p.strikes < need {
		return
	}
	p.strikes = 0
	if len(head.seqs) > 1 {
		p.shrunk = max(p.maxAcked, head.size/2)
		p.log.Error("the broker closed the connection each time right after a message larger than any it accepted: "+
			"probably over its maximum packet size; packing smaller messages from now on (set mqtt.max_packet_bytes or mqtt.batch.max_bytes below the broker's limit)",
			"bytes", head.size, "largest_accepted", p.maxAcked, "limit", p.shrunk)
		return
	}
	p.log.Error("the broker closed the connection each time right after a single reading larger than any message it accepted: "+
		"probably over its maximum packet size; discarding the reading (reported in band as discarded)",
		"seq", head.seqs[0], "bytes", head.size, "largest_accepted", p.maxAcked)
	d.discard(head.seqs)
}

func (d *drainer) ack(seqs []uint64, msgs int64) {
	if err := d.p.buf.Ack(seqs...); err != nil {
		d.p.log.Error("buffer ack failed; these readings will be sent again", "err", err)
		return
	}
	d.p.alerts.acked(seqs)
	d.p.delivered.Add(int64(len(seqs)))
	d.p.messages.Add(msgs)
}

// next packs the next message, live readings first, but never two live
// messages in a row while the backlog has something: when the message rate
// (AWS allows 100/s) is what limits delivery, a busy kit's live readings
// would otherwise take every slot and the backlog would never drain. So
// the backlog gets at least every other message, packed as full as
// batch.max_readings allows, and a live reading waits behind at most one
// backlog message. nil: nothing to send.
func (d *drainer) next() (*message, error) {
	d.clkTaken = false
	// Alerts go first, each alone (alerts.go).
	if m, err := d.nextAlert(); m != nil || err != nil {
		return m, err
	}
	order := [2]*cursor{d.live, d.backlog}
	if d.lastLive {
		order = [2]*cursor{d.backlog, d.live}
	}
	for _, cur := range order {
		var m *message
		var err error
		if cur == d.live {
			m, err = d.packLive()
		} else {
			m, err = d.pack(cur)
		}
		if m != nil || err != nil {
			d.lastLive = m != nil && cur == d.live
			return m, err
		}
	}
	return nil, nil
}

// fill reads ahead when the cursor has nothing pending; false when there is
// nothing to read now.
func (d *drainer) fill(cur *cursor) (bool, error) {
	for cur.head == len(cur.recs) {
		if cur.done || (cur.live && !cur.dirty) {
			return false, nil
		}
		recs, data, err := cur.r.NextInto(cur.recs[:0], cur.data[:0], d.p.opt.readChunk, readChunkBytes)
		if err != nil {
			return false, err
		}
		cur.recs, cur.data, cur.head = recs, data, 0
		if len(recs) == 0 {
			if cur.live {
				cur.dirty = false
			} else {
				cur.done = true
			}
			return false, nil
		}
	}
	return true, nil
}

// peek parses the oldest pending record, re-stamped, and returns its seq
// and view without taking it (cur.head++ takes it); false when nothing is
// available now. A record is parsed where it lies, into a view on the
// caller's stack: packing copies no reading and allocates nothing for one.
// Records that do not parse are discarded on the way.
func (d *drainer) peek(cur *cursor) (uint64, telemetry.RecordView, bool, error) {
	for {
		if ok, err := d.fill(cur); !ok || err != nil {
			return 0, telemetry.RecordView{}, false, err
		}
		r := cur.recs[cur.head]
		v, err := telemetry.ParseRecord(r.Data)
		if err != nil {
			// Bad bytes are data: drop the record, never crash-loop on it.
			cur.head++
			d.p.log.Error("discarding a buffered record that does not decode", "err", err)
			d.discard([]uint64{r.Seq})
			continue
		}
		if v.IsAlert() {
			// Sent by nextAlert, alone and ahead; never in a batch.
			cur.head++
			continue
		}
		d.restamp(&v)
		return r.Seq, v, true, nil
	}
}

func (d *drainer) discard(seqs []uint64) {
	if len(seqs) == 0 {
		return
	}
	d.p.discarded.Add(int64(len(seqs)))
	// Discard, not Ack: the buffer counts them and tells consumers in band
	// (a gap record, reason discarded) that these seqs will never come.
	if err := d.p.buf.Discard(buffer.ReasonDiscarded, seqs...); err != nil {
		d.p.log.Error("buffer discard failed", "err", err)
	}
}

// pack builds one message from cur: the single form when max_readings is
// 1, else a batch of as many readings as max_readings and the byte limit
// allow, from what is available now (a batch never waits to fill up here;
// packLive, in linger.go, lets live readings wait for batch.max_delay).
func (d *drainer) pack(cur *cursor) (*message, error) {
	p := d.p
	if p.maxReadings.Load() == 1 {
		for {
			seq, v, ok, err := d.peek(cur)
			if !ok || err != nil {
				return nil, err
			}
			cur.head++
			payload := telemetry.AppendRecordMessage(make([]byte, 0, 160), p.device, d.epoch, seq, &v)
			if len(payload) > p.payloadLimit {
				d.tooLarge(seq, &v, len(payload), p.payloadLimit)
				continue
			}
			return &message{payload: payload, seqs: []uint64{seq}}, nil
		}
	}
	b := d.startBatch()
	if err := d.addTo(b, cur); err != nil || len(b.seqs) == 0 {
		return nil, err
	}
	return b.finish(), nil
}

// batch is a batch-form message being packed: readings are encoded
// straight into it, each once, and it is finished when full or when there
// is nothing more to wait for.
type batch struct {
	payload []byte
	seqs    []uint64
	n       int // max_readings when it was started
	// hard is what the settings allow; limit may be lower when the broker
	// was found to close the connection on large messages. A reading
	// within hard but over limit still goes, alone: only the broker can
	// say it is too large (and noteUnacked then discards it).
	hard, limit int
	// full: max_readings reached, or the next reading would cross the
	// limit (it starts the next message).
	full bool
}

func (d *drainer) startBatch() *batch {
	p := d.p
	b := &batch{n: int(p.maxReadings.Load()), hard: p.payloadLimit, limit: p.payloadLimit}
	if p.shrunk > 0 {
		b.limit = min(b.limit, p.shrunk)
	}
	b.payload = telemetry.AppendBatchStart(make([]byte, 0, min(b.limit, 160*b.n+128)), p.device, d.epoch)
	return b
}

// addTo takes readings from cur into b until b is full or cur has nothing
// more now.
func (d *drainer) addTo(b *batch, cur *cursor) error {
	for !b.full && len(b.seqs) < b.n {
		seq, v, ok, err := d.peek(cur)
		if err != nil || !ok {
			return err
		}
		mark := len(b.payload)
		if len(b.seqs) > 0 {
			b.payload = append(b.payload, ',')
		}
		b.payload = telemetry.AppendRecordItem(b.payload, seq, &v)
		if size := len(b.payload) + telemetry.BatchEndLen; size > b.limit {
			if len(b.seqs) == 0 && size <= b.hard {
				cur.head++
				b.seqs = append(b.seqs, seq)
				b.full = true // alone, within what the settings allow
				return nil
			}
			b.payload = b.payload[:mark]
			if len(b.seqs) == 0 {
				// Nothing before it: size is this reading alone in a
				// batch, over what the settings allow.
				cur.head++
				d.tooLarge(seq, &v, size, b.hard)
				continue
			}
			b.full = true // the reading starts the next message
			return nil
		}
		cur.head++
		if b.seqs == nil {
			b.seqs = make([]uint64, 0, min(b.n, 1024))
		}
		b.seqs = append(b.seqs, seq)
	}
	b.full = true
	return nil
}

func (b *batch) finish() *message {
	return &message{payload: telemetry.AppendBatchEnd(b.payload), seqs: b.seqs}
}

func (d *drainer) tooLarge(seq uint64, v *telemetry.RecordView, size, limit int) {
	d.p.log.Error("discarding a reading larger than batch.max_bytes", "sensor", v.Sensor(), "bytes", size, "limit", limit)
	d.discard([]uint64{seq})
}

// restamp corrects an unsynced reading from this boot once the clock has
// synced. The clock is read only when such a reading comes by, and once
// per message: a synced kit draining a backlog makes no clock syscalls.
// The time to re-stamp with is read only once the clock is synced: a kit
// still waiting for NTP sends its readings as they are, and asking for the
// boot-time clock then was a system call per message for nothing.
func (d *drainer) restamp(v *telemetry.RecordView) {
	if v.Clock != telemetry.ClockUnsynced {
		return
	}
	if !d.clkTaken {
		clk := d.p.clk
		d.clkTaken, d.synced = true, clk.Synced()
		if d.synced {
			d.now, d.mono, d.boot = clk.Now(), clk.Mono(), clk.Boot()
		}
	}
	if d.synced {
		v.Restamp(d.now, d.mono, d.boot)
	}
}
