package buffer

import (
	"errors"
	"fmt"
	"io/fs"
)

// ReadStats reads the stats of the buffer in cfg.Dir without taking its lock
// and without writing anything, so it works while an agent has the
// directory open (for `kitd buffer stats`). It sees the state as of the
// agent's last cursor save; a torn tail it meets is reported, not cut.
// cfg.SegmentBytes bounds the frames it accepts, as for Open. A missing
// directory is ErrNoBuffer.
func ReadStats(cfg Config) (Stats, error) {
	return readStats(cfg, OSFS{})
}

func readStats(cfg Config, fsys FS) (Stats, error) {
	b, err := newBuffer(cfg, Deps{FS: fsys})
	if err != nil {
		return Stats{}, err
	}
	if _, err := fsys.Stat(cfg.Dir); errors.Is(err, fs.ErrNotExist) {
		return Stats{}, fmt.Errorf("%w: %s does not exist", ErrNoBuffer, cfg.Dir)
	}
	if err := b.recover(true); err != nil {
		return Stats{}, err
	}
	st := b.Stats()
	b.mu.Lock()
	b.closed = true
	for _, s := range b.segs {
		if s.rf != nil {
			s.rf.Close()
			s.rf = nil
		}
	}
	b.mu.Unlock()
	return st, nil
}

// Stats describes a buffer directory.
type Stats struct {
	Epoch   string
	NextSeq uint64
	// LastSeq is the newest record in the segments (0 when none is left):
	// after a kill -9 it is the last reading the dead agent took.
	LastSeq uint64
	// Pending counts records on disk that are not acknowledged.
	Pending int64
	// Bytes is the size of the segment files.
	Bytes int64
	// OldestSeq and Oldest are the oldest unacknowledged record (Oldest is
	// nil if none), so the caller can show its timestamp.
	OldestSeq uint64
	Oldest    []byte
	// Dropped counts readings lost since the buffer was created: the sum
	// of Lost over every reason but unused, plus Refused.
	Dropped int64
	// Lost counts lost seqs by reason name (full, corrupt, torn,
	// discarded, unused), every reason present.
	Lost map[string]int64
	// Refused counts readings refused without even a seq (the seq file
	// could not be written either); no gap record can tell of them.
	Refused int64
	// DroppedRanges are the latest ten dropped [from, to] seq ranges,
	// inclusive, oldest first, adjacent ones merged. Unused seqs are not
	// in them.
	DroppedRanges [][2]uint64
}

// Stats returns counters and the oldest pending record.
func (b *Buffer) Stats() Stats {
	b.mu.Lock()
	st := Stats{
		Epoch:   b.epoch,
		NextSeq: b.nextSeq,
		Bytes:   b.bytes,
		Refused: b.refused,
		Dropped: b.refused,
		Lost:    make(map[string]int64, numReasons),
	}
	for r, n := range b.lost {
		st.Lost[Reason(r).String()] = n
		if Reason(r) != ReasonUnused {
			st.Dropped += n
		}
	}
	for _, r := range b.droppedRanges {
		st.DroppedRanges = append(st.DroppedRanges, [2]uint64{r.lo, r.hi})
	}
	var oldest uint64
	for _, s := range b.segs {
		if s.records() > 0 {
			st.LastSeq = max(st.LastSeq, s.last)
		}
		st.Pending += int64(s.records() - b.acked.count(s.first, s.last))
		if m := b.acked.nextMissing(s.first); oldest == 0 && m <= s.last {
			oldest = m
		}
	}
	b.mu.Unlock()
	if oldest != 0 {
		if recs, err := b.Reader(oldest, 0).Next(1, 0); err == nil && len(recs) == 1 {
			st.OldestSeq, st.Oldest = recs[0].Seq, recs[0].Data
		}
	}
	return st
}
