// Space management, owned by the loop goroutine: max_bytes, min_free_bytes,
// a full file system, deleted directories, and freeing acknowledged segments.

package buffer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// dropOldest drops the oldest segment for space; false if there is none
// with records to give.
func (b *Buffer) dropOldest() bool {
	b.mu.Lock()
	var s *segment
	if len(b.segs) > 0 {
		s = b.segs[0]
	}
	b.mu.Unlock()
	if s == nil || (s == b.tailSeg && s.records() == 0) {
		return false
	}
	if err := b.dropSegments([]*segment{s}, "file system full"); err != nil {
		b.log.Error("dropping the oldest segment for space failed", "err", err)
		return false
	}
	return true
}

// checkDir notices that the buffer directory was deleted or replaced (by a
// person, or a cleanup script) and makes it again with the lock, the seq
// and cursor files: appends would otherwise go into unlinked files and be
// gone at the next start. The records of the old directory count as lost
// (corrupt). It returns whether it recreated the directory.
func (b *Buffer) checkDir() (bool, error) {
	fi, err := b.fs.Stat(b.dir)
	if err == nil && os.SameFile(fi, b.dirInfo) {
		return false, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("buffer: %w", err)
	}
	b.log.Error("buffer directory was deleted or replaced: making it again; the records it held are lost")
	if err := b.fs.MkdirAll(b.dir, 0o750); err != nil {
		return false, fmt.Errorf("buffer: recreate %s: %w", b.dir, err)
	}
	if fi, err = b.fs.Stat(b.dir); err != nil {
		return false, fmt.Errorf("buffer: %w", err)
	}
	lock, err := b.fs.Lock(filepath.Join(b.dir, lockFile))
	if err != nil {
		return false, fmt.Errorf("buffer: lock recreated %s: %w", b.dir, err)
	}
	b.lock.Close()
	b.lock, b.dirInfo = lock, fi
	for _, sf := range []**slotFile{&b.seqf, &b.curf} {
		old := *sf
		nf, _, err := openSlotFile(b.fs, old.path, old.magic, old.version, 0)
		if err != nil {
			return false, fmt.Errorf("buffer: recreate %s: %w", old.path, err)
		}
		old.close()
		*sf = nf
	}
	if err := b.saveSeq(b.seqState); err != nil {
		return false, fmt.Errorf("buffer: recreate seq file: %w", err)
	}
	b.mu.Lock()
	segs := append([]*segment(nil), b.segs...)
	for _, s := range segs {
		b.markLostLocked(s.first, s.last, ReasonCorrupt)
	}
	b.mu.Unlock()
	if err := b.saveCursor(true); err != nil {
		return false, err
	}
	if err := b.removeSegments(segs); err != nil {
		return false, err
	}
	return true, b.fs.SyncDir(b.dir)
}

// makeRoom drops the oldest segments until need more bytes fit within
// max_bytes and leave min_free_bytes free on the file system. When the file
// system is below min_free_bytes even without any older segment (another
// process filled it), every segment but the one being written goes: the
// buffer then holds at most two segments, and new readings are still taken.
func (b *Buffer) makeRoom(need int64) error {
	b.refresh() // first: recreating a deleted directory changes the segments
	b.mu.Lock()
	segs := b.segs
	total := b.bytes
	b.mu.Unlock()
	i := 0
	for total+need > int64(b.cfg.MaxBytes) && i < len(segs) {
		total -= segs[i].fileSize
		i++
	}
	byBytes := i
	if minFree := int64(b.cfg.MinFreeBytes); minFree > 0 && b.freeKnown {
		free := b.free
		for _, s := range segs[:i] {
			free += s.fileSize
		}
		for free-need < minFree && i < len(segs) && segs[i] != b.tailSeg {
			free += segs[i].fileSize
			i++
		}
	}
	if i == 0 {
		return nil
	}
	reason := "max_bytes"
	if i > byBytes {
		reason = "min_free_bytes"
	}
	return b.dropSegments(segs[:i], reason)
}

// refresh re-reads the file system's free space and checks that the
// directory is still the one opened, at most every statfsEvery bytes or
// statfsDelay: both can change behind the agent's back at any time.
func (b *Buffer) refresh() {
	if !b.statfsAt.IsZero() && b.sinceStatfs < statfsEvery && time.Since(b.statfsAt) < b.statfsDelay {
		return
	}
	b.statfsAt, b.sinceStatfs = time.Now(), 0
	if _, err := b.checkDir(); err != nil {
		b.log.Error("buffer directory check failed", "err", err)
	}
	if b.cfg.MinFreeBytes == 0 {
		return
	}
	avail, err := b.fs.Statfs(b.dir)
	if err != nil {
		b.log.Warn("cannot check free space", "err", err)
		return
	}
	b.free, b.freeKnown = avail, true
}

// dropSegments throws away segments to make room: count and record what was
// not yet delivered, save the cursor (so the count survives), then delete.
func (b *Buffer) dropSegments(ds []*segment, reason string) error {
	b.mu.Lock()
	for _, s := range ds {
		if s.records() == 0 {
			continue
		}
		n := b.markLostLocked(s.first, s.last, ReasonFull)
		if n > 0 {
			b.log.Warn("dropped oldest records to make room", "reason", reason,
				"file", s.path, "records", n, "from", s.first, "to", s.last)
		}
	}
	b.mu.Unlock()
	if err := b.saveCursor(true); err != nil {
		return err
	}
	return b.removeSegments(ds)
}

// deleteAcked deletes every sealed segment whose records are all acked.
func (b *Buffer) deleteAcked() {
	b.mu.Lock()
	var ds []*segment
	for _, s := range b.segs {
		if s != b.tailSeg && b.acked.containsRange(s.first, s.last) {
			ds = append(ds, s)
		}
	}
	b.mu.Unlock()
	if len(ds) == 0 {
		return
	}
	// The acks go to disk before the records do, so a crash right after
	// cannot leave seqs that are neither in a segment nor in the cursor
	// (recovery would have to guess whether they were ever used).
	if err := b.saveCursor(true); err != nil {
		b.log.Error("saving cursor before deleting acknowledged segments failed", "err", err)
		return
	}
	if err := b.removeSegments(ds); err != nil {
		b.log.Error("deleting acknowledged segments failed", "err", err)
	}
}

// removeSegments unlinks segments and fsyncs the directory. A crash in the
// middle leaves segments whose records are acked or dropped in the saved
// cursor, or in no cursor at all (then they are delivered again): never a
// cursor that claims more than the files hold.
func (b *Buffer) removeSegments(ds []*segment) error {
	var errs []error
	removed := 0
	for _, s := range ds {
		if err := b.fp(fpDeleteBeforeRemove); err != nil {
			return err
		}
		if s == b.tailSeg {
			b.tail.Close()
			b.tail = nil
			b.dirty = false
			b.mu.Lock()
			b.tailSeg = nil
			b.mu.Unlock()
		}
		if err := b.fs.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("buffer: %w", err))
			continue // keep it listed; the next pass retries
		}
		if err := b.fp(fpDeleteAfterRemove); err != nil {
			return err
		}
		b.mu.Lock()
		s.removed = true
		if s.rf != nil && s.refs == 0 {
			s.rf.Close()
			s.rf = nil
		}
		b.bytes -= s.fileSize
		for k, t := range b.segs {
			if t == s {
				b.segs = append(b.segs[:k:k], b.segs[k+1:]...)
				break
			}
		}
		b.mu.Unlock()
		b.free += s.fileSize
		removed++
	}
	if removed > 0 {
		if err := b.fs.SyncDir(b.dir); err != nil {
			errs = append(errs, fmt.Errorf("buffer: %w", err))
		} else if err := b.fp(fpDeleteAfterDirSync); err != nil {
			return err
		}
		b.mu.Lock()
		b.normalizeLocked()
		b.mu.Unlock()
	}
	return errors.Join(errs...)
}

// normalizeLocked adds to the acked set every seq below nextSeq that no live
// segment covers (deleted segments, reserved seqs lost to a crash), so the set
// collapses to the contiguous prefix plus the live tail ranges.
func (b *Buffer) normalizeLocked() {
	var prev, added uint64
	for _, s := range b.segs {
		if s.first > prev+1 {
			added += b.acked.add(prev+1, s.first-1)
		}
		prev = max(prev, s.last)
	}
	if b.nextSeq > prev+1 {
		added += b.acked.add(prev+1, b.nextSeq-1)
	}
	if added > 0 {
		b.cursorDirty = true
	}
}

// saveCursor persists the acked set and the drop counters into the older
// cursor slot. forceSync fsyncs even under SyncNever (drops need it: the
// count must be durable before the segment is gone).
func (b *Buffer) saveCursor(forceSync bool) error {
	b.mu.Lock()
	payload := encodeCursor(&cursorState{
		epoch: b.seqState.epoch, lost: b.lost, refused: b.refused,
		droppedRanges: b.droppedRanges, gaps: b.gaps, acked: b.acked,
	})
	b.cursorDirty = false
	b.mu.Unlock()
	err := b.curf.save(payload, forceSync || b.cfg.Sync != SyncNever, b.fp, fpCursorSave)
	b.lastCursorSave = time.Now()
	if err != nil {
		b.mu.Lock()
		b.cursorDirty = true
		b.mu.Unlock()
		return fmt.Errorf("buffer: save cursor: %w", err)
	}
	return nil
}
