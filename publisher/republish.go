package publisher

import (
	"context"

	"github.com/kitd-dev/kitd/buffer"
	"github.com/kitd-dev/kitd/telemetry"
)

// RepublishResult says what Republish did with each record.
type RepublishResult struct {
	// Sent are the seqs the broker acknowledged, in order.
	Sent []uint64
	// Skipped are seqs not sent because they cannot be: bytes that do not
	// decode as a reading, or a reading larger than batch.max_bytes (the
	// drain discarded them the first time too).
	Skipped []uint64
}

// Republish delivers recs again (records of a buffer.ReplayReader: the
// kitd.resend job) on the telemetry topic (alert records alone on the
// alert topic) over the connection up now,
// packed as the drain packs (batch.max_readings, the byte limits, the
// same re-stamping), one message at a time, each waiting for its PUBACK
// and counting against max_publish_rate. It acknowledges and discards
// nothing in the buffer: a record not yet acknowledged is also sent by
// the drain, which consumers deduplicate on (device, epoch, seq) as any
// at-least-once duplicate. It returns ErrOffline when no connection is
// up, or the connection's error, with what was sent before it.
func (p *Publisher) Republish(ctx context.Context, recs []buffer.Record) (RepublishResult, error) {
	var res RepublishResult
	s := p.session.Load()
	if s == nil {
		return res, ErrOffline
	}
	// A drainer of its own only for re-stamping; packing is done here so
	// nothing of Run's goroutine's state (learnt limits) is touched.
	d := &drainer{p: p, epoch: p.buf.Epoch()}
	limit := p.payloadLimit
	n := int(p.maxReadings.Load())
	var payload []byte
	var seqs []uint64
	flush := func() error {
		if len(seqs) == 0 {
			return nil
		}
		if n > 1 {
			payload = telemetry.AppendBatchEnd(payload)
		}
		if err := s.Publish(ctx, p.telemetryTopic, payload, false); err != nil {
			return err
		}
		res.Sent = append(res.Sent, seqs...)
		p.messages.Add(1)
		payload, seqs = nil, nil
		return nil
	}
	for _, r := range recs {
		v, err := telemetry.ParseRecord(r.Data)
		if err != nil {
			res.Skipped = append(res.Skipped, r.Seq)
			continue
		}
		d.clkTaken = false
		d.restamp(&v)
		if v.IsAlert() {
			// Alerts go alone on their own topic, as the drain sends them;
			// what was packed before it goes first, keeping seq order.
			if err := flush(); err != nil {
				return res, err
			}
			msg := telemetry.AppendRecordMessage(make([]byte, 0, 256), p.device, d.epoch, r.Seq, &v)
			if err := s.Publish(ctx, p.alertTopic, msg, false); err != nil {
				return res, err
			}
			res.Sent = append(res.Sent, r.Seq)
			p.messages.Add(1)
			continue
		}
		if n == 1 {
			payload = telemetry.AppendRecordMessage(make([]byte, 0, 160), p.device, d.epoch, r.Seq, &v)
			if len(payload) > limit {
				res.Skipped = append(res.Skipped, r.Seq)
				payload = nil
				continue
			}
			seqs = []uint64{r.Seq}
			if err := flush(); err != nil {
				return res, err
			}
			continue
		}
		for {
			if len(seqs) == 0 {
				payload = telemetry.AppendBatchStart(make([]byte, 0, min(limit, 160*n+128)), p.device, d.epoch)
			}
			mark := len(payload)
			if len(seqs) > 0 {
				payload = append(payload, ',')
			}
			payload = telemetry.AppendRecordItem(payload, r.Seq, &v)
			if len(payload)+telemetry.BatchEndLen <= limit {
				seqs = append(seqs, r.Seq)
				break
			}
			payload = payload[:mark]
			if len(seqs) == 0 {
				res.Skipped = append(res.Skipped, r.Seq) // alone over the limit
				payload = nil
				break
			}
			if err := flush(); err != nil {
				return res, err
			}
		}
		if len(seqs) >= n {
			if err := flush(); err != nil {
				return res, err
			}
		}
	}
	return res, flush()
}
