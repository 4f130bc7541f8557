package publisher

import "time"

// Lingering batches (mqtt.batch.max_delay). A kit taking 10 readings a
// second sends 26 million messages a month one per reading; packed in
// batches that take whatever is there (max_delay 0), a live reading rarely
// finds company, because the drain loop sends the moment it arrives. With
// max_delay set, the live cursor's readings go into an open batch that
// waits, up to max_delay after its first reading, for more: it is sent as
// soon as it holds batch.max_readings or the next reading would cross the
// byte limit, when max_delay has passed, or when the agent stops (the
// flush sends it at once). The backlog never lingers: it is old already.
//
// Nothing is at risk while a batch lingers: its readings are in the buffer
// and unacknowledged, so a kill -9 or a lost connection leaves them for
// the next connection, which sends them as backlog (at once).

// lingering is the open live batch and when its first reading was taken
// into it (lingerNow's clock).
type lingering struct {
	b     *batch
	since time.Duration
	timer *time.Timer
}

// packLive packs the next live message: pack's when max_delay is 0 or
// max_readings is 1 (one reading per message has nothing to wait for),
// else the open batch once it is due. nil: nothing to send now.
func (d *drainer) packLive() (*message, error) {
	delay := d.p.cfg.Batch.MaxDelay
	if d.open.b == nil && (delay <= 0 || d.p.maxReadings.Load() == 1) {
		return d.pack(d.live)
	}
	if d.open.b == nil {
		if _, _, ok, err := d.peek(d.live); !ok || err != nil {
			return nil, err
		}
		d.open.b, d.open.since = d.startBatch(), d.p.opt.lingerNow()
	}
	if err := d.addTo(d.open.b, d.live); err != nil {
		return nil, err
	}
	b := d.open.b
	if len(b.seqs) == 0 {
		// Everything peeked was discarded (undecodable, too large).
		d.open.b = nil
		return nil, nil
	}
	if !b.full && !d.flushing && d.p.opt.lingerNow()-d.open.since < delay {
		return nil, nil
	}
	d.open.b = nil
	return b.finish(), nil
}

// lingerWake is what the drain loop waits on besides its other events: it
// fires when the open batch is due. nil when nothing lingers.
func (d *drainer) lingerWake() <-chan time.Time {
	if d.open.b == nil {
		return nil
	}
	left := d.open.since + d.p.cfg.Batch.MaxDelay - d.p.opt.lingerNow()
	if d.open.timer == nil {
		d.open.timer = time.NewTimer(max(left, 0))
	} else {
		d.open.timer.Reset(max(left, 0))
	}
	return d.open.timer.C
}

// stopLinger releases the timer when the connection's drain ends; the open
// batch's readings stay unacknowledged in the buffer.
func (d *drainer) stopLinger() {
	if d.open.timer != nil {
		d.open.timer.Stop()
	}
	d.open = lingering{}
}
