// The write path, owned by the loop goroutine: group commit, seq
// reservation, segment rolls, fsyncs, and what happens when a write fails.

package buffer

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// saveExactSeq lowers the durable high-water mark to the next seq on a clean
// stop, so the next start goes on without a gap: only a crash leaves
// reserved seqs unused (and they are then reported as such).
func (b *Buffer) saveExactSeq() error {
	if b.seqf == nil || b.hwm == b.nextSeq {
		return nil
	}
	st := b.seqState
	st.hwm = b.nextSeq
	if err := b.saveSeq(st); err != nil {
		return fmt.Errorf("buffer: save next seq: %w", err)
	}
	b.seqState, b.hwm = st, st.hwm
	return nil
}

// saveSeq writes the seq state into both slots, one after the other, each
// fsynced: a slot damaged later (a flipped bit) then falls back to a slot
// holding the same high-water mark, never an older one whose seqs were
// already handed out. A crash between the two writes leaves the new state
// in one slot and the old in the other; the new is loaded, as its txid is
// higher, or, if the first write was torn, the old, below which nothing was
// handed out yet.
func (b *Buffer) saveSeq(st seqState) error {
	p := encodeSeq(st)
	if err := b.seqf.save(p, true, b.fp, fpSeqReserve); err != nil {
		return err
	}
	return b.seqf.save(p, true, b.fp, fpSeqReserve)
}

// commitQueued commits req and whatever else is queued, as one batch.
func (b *Buffer) commitQueued(req *appendReq) {
	batch := []*appendReq{req}
	size := req.size
	for size < maxBatchBytes {
		select {
		case r := <-b.appendc:
			batch = append(batch, r)
			size += r.size
			continue
		default:
		}
		break
	}
	err := b.commitRetry(batch, size)
	if err != nil {
		b.refuse(batch, err)
	}
	for _, r := range batch {
		r.done <- err
	}
}

// flushGaps writes the pending gap records when no append is there to carry
// them; on failure they stay pending for the next try.
func (b *Buffer) flushGaps() {
	b.mu.Lock()
	pending := len(b.gaps) > 0 && b.gapRec != nil
	b.mu.Unlock()
	if !pending {
		return
	}
	if err := b.commitRetry(nil, 0); err != nil {
		b.log.Error("gap records not written yet; they wait for the next write", "err", err)
	}
}

// commitRetry commits, making room as the file system demands: new readings
// are never refused while older segments can be dropped. ENOSPC (from any
// writer on the file system, not only the buffer) drops the oldest segment
// and tries again; a directory deleted behind the agent's back is made
// again.
func (b *Buffer) commitRetry(batch []*appendReq, size int) error {
	recreated := false
	for {
		err := b.commit(batch, size)
		if err == nil {
			b.setFailing(nil)
			return nil
		}
		if !recreated {
			if again, derr := b.checkDir(); derr != nil {
				err = errors.Join(err, derr)
			} else if again {
				recreated = true
				continue
			}
		}
		if errors.Is(err, ErrNoSpace) && b.dropOldest() {
			continue
		}
		b.setFailing(err)
		return err
	}
}

// setFailing tracks a run of failed commits other than for space (a read-only
// or unwritable directory, I/O errors): FailingSince reports it, so the agent
// can stop being healthy and let systemd restart it. A full disk is not such
// a failure: a restart would not help, and the buffer copes by dropping.
func (b *Buffer) setFailing(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case err == nil || errors.Is(err, ErrNoSpace):
		b.failingSince = time.Time{}
	case b.failingSince.IsZero():
		b.failingSince = time.Now()
	}
}

// refuse accounts for readings that could not be written at all: they get
// seqs, counted and explained in band as a gap once something can be written
// again. Only if even the seq file cannot be written are they counted
// without a seq (Stats.Refused).
func (b *Buffer) refuse(batch []*appendReq, err error) {
	n := 0
	for _, r := range batch {
		n += len(r.payloads)
	}
	if n == 0 {
		return
	}
	reason := ReasonCorrupt
	if errors.Is(err, ErrNoSpace) {
		reason = ReasonFull
	}
	first := b.nextSeq
	if rerr := b.reserve(first + uint64(n)); rerr != nil {
		b.mu.Lock()
		b.refused += int64(n)
		b.cursorDirty = true
		b.mu.Unlock()
		b.log.Error("readings refused without a seq: the seq file cannot be written either", "readings", n, "err", err, "seq_err", rerr)
		return
	}
	last := first + uint64(n) - 1
	b.mu.Lock()
	b.nextSeq = last + 1
	b.markLostLocked(first, last, reason)
	b.mu.Unlock()
	b.log.Error("readings refused: nothing older is left to drop", "readings", n, "from", first, "to", last, "reason", reason.String(), "err", err)
}

// commit writes a batch, pending gap records first: make room, reserve
// seqs, roll if needed, one write, and under SyncAlways one fsync.
func (b *Buffer) commit(batch []*appendReq, size int) error {
	// Step 1: stay within max_bytes and min_free_bytes by dropping the
	// oldest segments; new readings always win over old ones. Before the
	// gaps are taken, as dropping makes gaps of its own.
	b.mu.Lock()
	gapBytes := len(b.gaps) * 96
	b.mu.Unlock()
	if err := b.makeRoom(int64(size+gapBytes) + segHeaderSize); err != nil {
		return err
	}
	gapsTaken, gapPay := b.takeGaps()
	defer b.untakeGaps()
	n := len(gapPay)
	for _, p := range gapPay {
		size += frameHeaderSize + len(p)
	}
	for _, r := range batch {
		n += len(r.payloads)
	}
	if n == 0 {
		return nil
	}
	first := b.nextSeq // only this goroutine writes nextSeq
	// Step 2: the seqs must be below a durable high-water mark before
	// anyone sees them, so a power loss can never hand them out again.
	if err := b.reserve(first + uint64(n)); err != nil {
		return err
	}
	// Step 3: seal a full segment and start the next, named by first.
	if b.tailSeg == nil || (b.tailSeg.size+int64(size) > int64(b.cfg.SegmentBytes) && b.tailSeg.records() > 0) {
		if err := b.roll(first); err != nil {
			return err
		}
	}
	seg := b.tailSeg
	buf := b.enc[:0]
	seq := first
	var marks []indexEntry
	lastMark := int64(segHeaderSize)
	if k := len(seg.index); k > 0 {
		lastMark = seg.index[k-1].off
	}
	frame := func(p []byte) {
		off := seg.size + int64(len(buf))
		if off-lastMark >= indexEvery {
			marks = append(marks, indexEntry{seq, off})
			lastMark = off
		}
		buf = appendFrame(buf, seq, p)
		seq++
	}
	for _, p := range gapPay {
		frame(p)
	}
	for _, r := range batch {
		r.first = seq
		for _, p := range r.payloads {
			frame(p)
		}
	}
	if cap(buf) <= 4*maxBatchBytes {
		b.enc = buf // keep the encode buffer unless a huge batch grew it
	}
	// Step 4: one write for the whole batch, at the end of the valid data
	// (pwrite, so a failed earlier write's leftovers are overwritten).
	if _, err := b.tail.WriteAt(buf, seg.size); err != nil {
		// Leave no partial frame behind; if this fails too, the next
		// write overwrites it, and recovery would cut it as a torn tail.
		_ = b.tail.Truncate(seg.size)
		return writeErr(seg.path, err)
	}
	if err := b.fp(fpAppendAfterWrite); err != nil {
		return err
	}
	b.mu.Lock()
	seg.index = append(seg.index, marks...)
	seg.size += int64(len(buf))
	seg.fileSize = seg.size
	seg.last = seq - 1
	b.bytes += int64(len(buf))
	b.nextSeq = seq
	b.gaps = b.gaps[len(gapPay):]
	if len(gapPay) > 0 {
		b.cursorDirty = true
		b.noteWrittenLocked(first, gapsTaken)
	}
	b.gapsTaken = 0
	b.mu.Unlock()
	b.dirty = true
	b.free -= int64(len(buf))
	b.sinceStatfs += int64(len(buf))
	// Before replying, so a caller that appended sees the signal.
	select {
	case b.notify <- struct{}{}:
	default:
	}
	// Step 5: under SyncAlways, one fsync for everyone in the batch.
	if b.cfg.Sync == SyncAlways {
		return b.syncData()
	}
	return nil
}

// takeGaps encodes the pending gaps for a commit. Until the commit ends
// (untakeGaps), they are not merged with new ones, so what is written is
// exactly what is then removed from the list.
func (b *Buffer) takeGaps() ([]Gap, [][]byte) {
	if b.gapRec == nil {
		return nil, nil
	}
	b.mu.Lock()
	gaps := append([]Gap(nil), b.gaps...)
	b.gapsTaken = len(gaps)
	b.mu.Unlock()
	pay := make([][]byte, len(gaps))
	for i, g := range gaps {
		pay[i] = b.gapRec(g)
	}
	return gaps, pay
}

func (b *Buffer) untakeGaps() {
	b.mu.Lock()
	b.gapsTaken = 0
	b.mu.Unlock()
}

// writeErr wraps a write error with the file name, and with ErrNoSpace when
// the file system is full, so callers can tell "disk full" from a broken disk.
func writeErr(path string, err error) error {
	if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT) {
		return fmt.Errorf("%w: write %s: %w", ErrNoSpace, path, err)
	}
	return fmt.Errorf("buffer: write %s: %w", path, err)
}

// reserve makes the durable high-water mark cover every seq below upTo.
func (b *Buffer) reserve(upTo uint64) error {
	if upTo <= b.hwm {
		return nil
	}
	hwm := (upTo/seqReserve + 1) * seqReserve
	st := b.seqState
	st.hwm = hwm
	if err := b.saveSeq(st); err != nil {
		return fmt.Errorf("buffer: reserve seqs: %w", err)
	}
	b.seqState, b.hwm = st, hwm
	return nil
}

// syncData fsyncs the tail segment if something was written since the last
// fsync. Sealed segments were fsynced when they were sealed.
func (b *Buffer) syncData() error {
	if b.tail == nil || !b.dirty {
		return nil
	}
	if err := b.tail.Sync(); err != nil {
		return fmt.Errorf("buffer: fsync %s: %w", b.tail.Name(), err)
	}
	if err := b.fp(fpAppendAfterSync); err != nil {
		return err
	}
	b.dirty = false
	b.lastSync = time.Now()
	return nil
}

// roll seals the tail segment and starts a new one whose first seq is first.
func (b *Buffer) roll(first uint64) error {
	if b.tail != nil {
		// Step 1: a sealed segment is complete on disk, so only the last
		// segment can ever have a torn tail. Done under SyncNever too: it
		// costs one fsync per segment, and it lets Sync and Close cover
		// every segment by fsyncing the tail alone.
		if err := b.syncData(); err != nil {
			return err
		}
		if err := b.fp(fpRollAfterSyncPrev); err != nil {
			return err
		}
		b.tail.Close()
		b.tail = nil
		b.mu.Lock()
		b.tailSeg = nil
		b.mu.Unlock()
		b.dirty = false
	}
	path := segPath(b.dir, first)
	// Step 2: create the file. O_TRUNC: a file of this name can only be
	// the leftover of a roll that failed before any record was in it.
	f, err := b.fs.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return writeErr(path, err)
	}
	fail := func(err error) error {
		f.Close()
		_ = b.fs.Remove(path) // best effort: recovery removes a headerless file too
		return err
	}
	if err := b.fp(fpRollAfterCreate); err != nil {
		return fail(err)
	}
	// Step 3: the header, then fsync file and directory so the new name
	// survives a power loss before any record goes in.
	if _, err := f.WriteAt(encodeSegHeader(first), 0); err != nil {
		return fail(writeErr(path, err))
	}
	if err := b.fp(fpRollAfterHeader); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(fmt.Errorf("buffer: fsync %s: %w", path, err))
	}
	if err := b.fp(fpRollAfterSync); err != nil {
		return fail(err)
	}
	if err := b.fs.SyncDir(b.dir); err != nil {
		return fail(fmt.Errorf("buffer: %w", err))
	}
	if err := b.fp(fpRollAfterDirSync); err != nil {
		return fail(err)
	}
	seg := &segment{first: first, last: first - 1, size: segHeaderSize, fileSize: segHeaderSize, path: path}
	b.mu.Lock()
	b.segs = append(b.segs, seg)
	b.tailSeg = seg
	b.bytes += segHeaderSize
	b.mu.Unlock()
	b.tail = f
	b.free -= segHeaderSize
	return nil
}
