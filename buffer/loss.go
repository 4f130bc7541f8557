package buffer

import (
	"fmt"
	"slices"
)

// Reason says why seqs below the next seq will never be delivered. Every
// such seq is counted under one reason and, when the buffer writes gap
// records (Deps.GapRecord), explained in band by one.
type Reason uint8

// Reasons. The names are the wire contract's gap reasons.
const (
	// ReasonFull: dropped to make room (max_bytes, min_free_bytes, a
	// full file system), or refused while nothing older could be dropped.
	ReasonFull Reason = iota
	// ReasonCorrupt: bytes on disk that form no record, or segment files
	// removed behind the agent's back (a deleted buffer directory).
	ReasonCorrupt
	// ReasonTorn: seqs after the last whole record of a torn tail that a
	// crash left; they may include reserved seqs that were never used.
	ReasonTorn
	// ReasonDiscarded: records the publisher could not send (they do not
	// decode, or no message the broker takes can hold them).
	ReasonDiscarded
	// ReasonUnused: seqs reserved ahead by a process that crashed before
	// using them. Not a loss: no reading ever had them.
	ReasonUnused

	numReasons
)

var reasonNames = [numReasons]string{"full", "corrupt", "torn", "discarded", "unused"}

func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// Reasons lists every reason, in the order Stats.Lost counts them.
func Reasons() []Reason {
	return []Reason{ReasonFull, ReasonCorrupt, ReasonTorn, ReasonDiscarded, ReasonUnused}
}

// Gap is a range of seqs, inclusive, that will never be delivered, and why.
type Gap struct {
	From, To uint64
	Reason   Reason
}

// maxPendingGaps bounds the gaps waiting to be written as records (they
// wait while the disk is full). Beyond it the oldest is left out of the
// stream; it stays counted in Stats.Lost and logged.
const maxPendingGaps = 32

// addGapLocked queues a gap record, merging it into the last one when they
// touch and agree on the reason, so a long outage of small segments makes one
// record, not hundreds.
func (b *Buffer) addGapLocked(g Gap) {
	if b.gapRec == nil {
		return
	}
	if n := len(b.gaps); n > b.gapsTaken {
		last := &b.gaps[n-1]
		if last.Reason == g.Reason && g.From <= last.To+1 && g.To+1 >= last.From {
			last.From, last.To = min(last.From, g.From), max(last.To, g.To)
			return
		}
	}
	b.gaps = append(b.gaps, g)
	if k := len(b.gaps) - maxPendingGaps; k > 0 && b.gapsTaken == 0 {
		for _, old := range b.gaps[:k] {
			b.log.Error("too many gap records waiting for space; this one is left out of the stream (still counted)",
				"from", old.From, "to", old.To, "reason", old.Reason.String())
		}
		b.gaps = append(b.gaps[:0], b.gaps[k:]...)
	}
	b.cursorDirty = true
}

// gapAt is a gap record written at seq.
type gapAt struct {
	seq uint64
	gap Gap
}

// noteWrittenLocked remembers the gap records just written from seq first
// on, and forgets those acked since: a gap record that is itself lost
// before delivery (its segment dropped for space while the disk stays
// full, or discarded) must hand its gap on to the next one, or the seqs it
// explained would go missing without a word. Only records written by this
// run are known; they are few (gaps merge), and acked ones go here.
func (b *Buffer) noteWrittenLocked(first uint64, gaps []Gap) {
	b.written = slices.DeleteFunc(b.written, func(w gapAt) bool { return b.acked.containsRange(w.seq, w.seq) })
	for i, g := range gaps {
		b.written = append(b.written, gapAt{first + uint64(i), g})
	}
}

// addDroppedRangeLocked records a dropped range for Stats.DroppedRanges,
// merged with the latest one when adjacent or overlapping, so the bounded
// list keeps covering a long outage instead of its last ten segments.
func (b *Buffer) addDroppedRangeLocked(r seqRange) {
	if n := len(b.droppedRanges); n > 0 {
		last := &b.droppedRanges[n-1]
		if r.lo <= last.hi+1 && r.hi+1 >= last.lo {
			last.lo, last.hi = min(last.lo, r.lo), max(last.hi, r.hi)
			return
		}
	}
	b.droppedRanges = append(b.droppedRanges, r)
	if k := len(b.droppedRanges) - maxDroppedRanges; k > 0 {
		b.droppedRanges = append(b.droppedRanges[:0], b.droppedRanges[k:]...)
	}
}

// markLostLocked records the seqs of [lo, hi] that are not yet in the acked
// set as lost for reason: counted, ranged (except unused seqs, which were
// never a reading) and queued as gap records, one per run of missing seqs.
// Then [lo, hi] joins the acked set so they are never read or counted again.
// It returns how many were newly lost.
func (b *Buffer) markLostLocked(lo, hi uint64, reason Reason) int64 {
	if hi < lo {
		return 0
	}
	var n int64
	for x := b.acked.nextMissing(lo); x <= hi; {
		end := hi
		if i := b.acked.search(x); i < len(b.acked.r) && b.acked.r[i].lo <= hi {
			end = b.acked.r[i].lo - 1
		}
		n += int64(end - x + 1)
		if reason != ReasonUnused {
			b.addDroppedRangeLocked(seqRange{x, end})
		}
		b.addGapLocked(Gap{x, end, reason})
		b.requeueWrittenLocked(x, end)
		if end == hi {
			break
		}
		x = b.acked.nextMissing(end + 1)
	}
	b.lost[reason] += n
	b.acked.add(lo, hi)
	b.cursorDirty = true
	return n
}

// requeueWrittenLocked queues again the gaps of the written gap records in
// [lo, hi], which are being lost undelivered. Queued after the loss that
// takes them, a gap of the same reason next to it merges into one record.
func (b *Buffer) requeueWrittenLocked(lo, hi uint64) {
	kept := b.written[:0]
	for _, w := range b.written {
		if w.seq >= lo && w.seq <= hi {
			b.addGapLocked(w.gap)
			continue
		}
		kept = append(kept, w)
	}
	clear(b.written[len(kept):])
	b.written = kept
}
