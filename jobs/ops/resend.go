package ops

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kitd-dev/kitd/buffer"
	"github.com/kitd-dev/kitd/jobs"
	"github.com/kitd-dev/kitd/publisher"
)

// MaxResend bounds one kitd.resend range: at AWS's 100 messages a second
// a larger range would outlast a sensible step timeout; split it.
const MaxResend = 100000

// Replayer reads the buffer's records, acknowledged ones included.
type Replayer interface {
	ReplayReader(from, until uint64) *buffer.Reader
	NextSeq() uint64
	Epoch() string
}

// Republisher sends records again over the connection up now.
type Republisher interface {
	Republish(ctx context.Context, recs []buffer.Record) (publisher.RepublishResult, error)
}

// Resend is kitd.resend: deliver the seqs from..to (inclusive) again, as
// far as the buffer still holds them. Acknowledged records stay on disk
// until their whole segment is acknowledged and deleted, so a recent
// range is usually all there; what is not (deleted, dropped, corrupt, or
// never a reading) is named in "gone". SUCCEEDED when every seq of the
// range was sent again, FAILED otherwise, always with "resent" (the
// count) and "ranges" (what was sent). An optional "epoch" must be the
// buffer's (a new SD card starts a new epoch and its seqs are other
// readings). Progress is reported every 10 s. The messages are duplicates
// by design: consumers deduplicate on (device, epoch, seq).
type Resend struct {
	Buffer    func() Replayer
	Publisher func() Republisher
	// ProgressEvery is how often progress is reported (default 10s).
	ProgressEvery time.Duration
}

type resendParams struct {
	From  *uint64 `json:"from"`
	To    *uint64 `json:"to"`
	Epoch string  `json:"epoch"`
}

// Run implements jobs.Operation.
func (op Resend) Run(ctx context.Context, e *jobs.Execution) jobs.Result {
	var p resendParams
	if err := jobs.DecodeParams(e.Document, &p); err != nil {
		return reject(err.Error())
	}
	switch {
	case p.From == nil || p.To == nil:
		return reject(`"from" and "to" (seqs, inclusive) are required`)
	case *p.From < 1 || *p.To < *p.From:
		return reject(`want 1 <= "from" <= "to"`)
	case *p.To-*p.From >= MaxResend:
		return reject(fmt.Sprintf("at most %d seqs at once: split the range", MaxResend))
	}
	from, to := *p.From, *p.To
	buf := op.Buffer()
	if p.Epoch != "" && p.Epoch != buf.Epoch() {
		return fail(fmt.Sprintf("the buffer's epoch is %s, not %s: these seqs are other readings (a new buffer)", buf.Epoch(), p.Epoch))
	}
	every := op.ProgressEvery
	if every <= 0 {
		every = 10 * time.Second
	}
	d := map[string]string{}
	if next := buf.NextSeq(); to >= next {
		if from >= next {
			return fail(fmt.Sprintf("no seq of %d-%d has been taken yet (the next is %d)", from, to, next))
		}
		d["not_taken_yet"] = fmt.Sprintf("%d-%d", next, to)
		to = next - 1
	}
	r := buf.ReplayReader(from, to+1)
	var sent, skipped []uint64
	last := time.Now()
	for {
		recs, err := r.Next(256, 256<<10)
		if err != nil {
			return fail("reading the buffer: " + err.Error())
		}
		if len(recs) == 0 {
			break
		}
		res, err := op.Publisher().Republish(ctx, recs)
		sent = append(sent, res.Sent...)
		skipped = append(skipped, res.Skipped...)
		if err != nil {
			d["reason"] = "delivery stopped: " + err.Error()
			d["resent"] = strconv.Itoa(len(sent))
			d["ranges"] = ranges(sent)
			return jobs.Result{Status: jobs.Failed, Details: d}
		}
		if time.Since(last) >= every {
			last = time.Now()
			_ = e.Progress(ctx, map[string]string{"resent": strconv.Itoa(len(sent)), "at": strconv.FormatUint(recs[len(recs)-1].Seq, 10)})
		}
	}
	d["resent"] = strconv.Itoa(len(sent))
	if len(sent) > 0 {
		d["ranges"] = ranges(sent)
	}
	if len(skipped) > 0 {
		d["skipped"] = ranges(skipped) + " (undecodable or over batch.max_bytes)"
	}
	gone := missing(from, to, sent, skipped)
	if gone != "" {
		d["gone"] = gone
	}
	if gone != "" || len(skipped) > 0 || d["not_taken_yet"] != "" {
		d["reason"] = "part of the range could not be sent again"
		return jobs.Result{Status: jobs.Failed, Details: d}
	}
	return jobs.Result{Status: jobs.Succeeded, Details: d}
}

// ranges writes ascending seqs as "1-5,9,12-20".
func ranges(seqs []uint64) string {
	var b strings.Builder
	for i := 0; i < len(seqs); {
		j := i
		for j+1 < len(seqs) && seqs[j+1] == seqs[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		if i == j {
			fmt.Fprintf(&b, "%d", seqs[i])
		} else {
			fmt.Fprintf(&b, "%d-%d", seqs[i], seqs[j])
		}
		i = j + 1
	}
	return b.String()
}

// missing is the seqs of from..to in neither list, as ranges.
func missing(from, to uint64, lists ...[]uint64) string {
	have := map[uint64]bool{}
	for _, l := range lists {
		for _, s := range l {
			have[s] = true
		}
	}
	var out []uint64
	for s := from; s <= to; s++ {
		if !have[s] {
			out = append(out, s)
		}
	}
	return ranges(out)
}
