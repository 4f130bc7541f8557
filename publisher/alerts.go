package publisher

import (
	"github.com/kitd-dev/kitd/buffer"
	"github.com/kitd-dev/kitd/telemetry"
)

// Alerts ahead of everything else.
//
// An alert record sits in the buffer among the readings, at the seq it was
// appended with, possibly behind a day's backlog. So that it goes out
// first, the publisher keeps one more Reader over the whole buffer that
// only looks at each record's kind byte and copies the alert records into
// a small queue; the drain loop sends that queue before any reading, one
// alert per message (never in a batch, never waiting to fill one), on the
// alert topic. The live and backlog cursors skip alert records.
//
// The scanning Reader and the queue live as long as the Publisher, across
// connections: the first connection after a start scans the pending
// records once (a day's backlog of 10 sensors at 10 s is 86,400 records,
// read from the page cache or the SD card at the buffer's read speed), and
// later scans only read what was appended since. A queued alert leaves the
// queue when the buffer is told it was delivered (PUBACK); one that was in
// flight on a lost connection is sent again on the next one, like any
// reading.

// maxQueuedAlerts bounds the queue: alerts are a few a day; a buffer full
// of them is drained a chunk at a time (the scan waits for room).
const maxQueuedAlerts = 1024

// alertQueue is owned by Run's goroutine.
type alertQueue struct {
	r          *buffer.Reader
	recs       []buffer.Record
	data       []byte
	scannedTil uint64 // the buffer's NextSeq when a scan last came back empty
	queue      []buffer.Record
	// conn is the drainer the inflight marks belong to: a new connection
	// sends whatever is still queued.
	conn     *drainer
	inflight map[uint64]bool
}

// scan reads what was appended since the last scan, queueing alert records.
func (q *alertQueue) scan(p *Publisher) error {
	if q.r == nil {
		q.r = p.buf.Reader(0, 0)
	}
	for len(q.queue) < maxQueuedAlerts {
		next := p.buf.NextSeq()
		if next <= q.scannedTil {
			return nil
		}
		recs, data, err := q.r.NextInto(q.recs[:0], q.data[:0], p.opt.readChunk, readChunkBytes)
		if err != nil {
			return err
		}
		q.recs, q.data = recs, data
		if len(recs) == 0 {
			q.scannedTil = next
			if cap(q.data) > 64<<10 {
				// Caught up after a long first scan: steady state reads a
				// few records at a time; give the chunk's memory back.
				q.recs, q.data = nil, nil
			}
			return nil
		}
		for _, r := range recs {
			if telemetry.IsAlertRecord(r.Data) {
				q.queue = append(q.queue, buffer.Record{Seq: r.Seq, Data: append([]byte(nil), r.Data...)})
			}
		}
		p.touch() // a long first scan is progress, not a wedge
	}
	return nil
}

// acked drops delivered alerts from the queue.
func (q *alertQueue) acked(seqs []uint64) {
	if len(q.queue) == 0 {
		return
	}
	done := make(map[uint64]bool, len(q.queue))
	for _, r := range q.queue {
		done[r.Seq] = false
	}
	n := 0
	for _, s := range seqs {
		if _, ok := done[s]; ok {
			done[s] = true
			n++
		}
	}
	if n == 0 {
		return
	}
	kept := q.queue[:0]
	for _, r := range q.queue {
		if !done[r.Seq] {
			kept = append(kept, r)
		} else {
			delete(q.inflight, r.Seq)
		}
	}
	clear(q.queue[len(kept):])
	q.queue = kept
}

// nextAlert packs the oldest queued alert not yet sent on this connection;
// nil when there is none.
func (d *drainer) nextAlert() (*message, error) {
	p := d.p
	q := &p.alerts
	if err := q.scan(p); err != nil {
		return nil, err
	}
	if q.conn != d {
		q.conn, q.inflight = d, map[uint64]bool{}
	}
	for i := 0; i < len(q.queue); i++ {
		r := q.queue[i]
		if q.inflight[r.Seq] {
			continue
		}
		v, err := telemetry.ParseRecord(r.Data)
		if err != nil {
			// Bad bytes are data: explained in band, never a crash loop.
			p.log.Error("discarding a buffered alert record that does not decode", "seq", r.Seq, "err", err)
			q.queue = append(q.queue[:i], q.queue[i+1:]...)
			i--
			d.discard([]uint64{r.Seq})
			continue
		}
		d.restamp(&v)
		q.inflight[r.Seq] = true
		payload := telemetry.AppendRecordMessage(make([]byte, 0, 256), p.device, d.epoch, r.Seq, &v)
		return &message{payload: payload, seqs: []uint64{r.Seq}, topic: p.alertTopic}, nil
	}
	return nil, nil
}
