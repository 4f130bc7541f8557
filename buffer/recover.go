package buffer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// recover loads the seq file and the cursor, scans every segment, repairs
// what it must (cuts a torn tail, removes headerless files) unless readOnly,
// and sets up the run-time state. Bad bytes never make it fail: they are
// skipped, counted as dropped and logged.
func (b *Buffer) recover(readOnly bool) error {
	entries, err := b.fs.ReadDir(b.dir)
	if err != nil {
		return fmt.Errorf("buffer: %w", err)
	}
	type segFile struct {
		first uint64
		name  string
	}
	var files []segFile
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		first, ok := parseSegName(e.Name())
		if !ok {
			if strings.HasSuffix(e.Name(), segSuffix) {
				b.log.Warn("ignoring file with a segment suffix but no valid seq in its name", "file", e.Name())
			}
			continue
		}
		files = append(files, segFile{first, e.Name()})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].first < files[j].first })

	seqPath := filepath.Join(b.dir, seqFile)
	seqTx, _, seqPayload, seqErr := readSlotFile(b.fs, seqPath, seqMagic, func(v uint32, p []byte) error {
		if v != seqSlotVersion {
			return errBadVersion
		}
		_, err := decodeSeq(p)
		return err
	})
	newEpoch := seqErr != nil
	if seqErr == nil {
		b.seqState, _ = decodeSeq(seqPayload)
		b.hwm = b.seqState.hwm
	} else {
		if !errors.Is(seqErr, fs.ErrNotExist) || len(files) > 0 {
			// Seqs handed out before a power loss may be reused now;
			// a new epoch tells consumers the counter restarted.
			b.log.Warn("seq file unreadable: starting a new epoch", "err", seqErr)
		}
		if b.seqState.epoch, err = newEpochID(); err != nil {
			return fmt.Errorf("buffer: make epoch: %w", err)
		}
	}
	b.epoch = epochString(b.seqState.epoch)
	if newEpoch && readOnly {
		b.epoch = "" // made up here, never persisted: do not show it
	}

	curPath := filepath.Join(b.dir, cursorFile)
	curTx, curVer, curPayload, curErr := readSlotFile(b.fs, curPath, cursorMagic, func(v uint32, p []byte) error {
		_, err := decodeCursor(v, p)
		return err
	})
	// The seq and cursor files are checked against each other, and every
	// disagreement is resolved toward no loss: the next seq goes above
	// every seq either file knows of, and acknowledgements of another
	// epoch are not inherited (the records on disk go out again).
	var known uint64 // the highest seq the cursor knows of
	if curErr == nil {
		c, _ := decodeCursor(curVer, curPayload)
		b.lost, b.refused, b.droppedRanges = c.lost, c.refused, c.droppedRanges
		known = c.highest()
		if c.epochKnown && c.epoch != b.seqState.epoch {
			b.log.Warn("cursor belongs to another epoch than the seq file: its acknowledgements are not carried over, every record on disk will be delivered again",
				"cursor_epoch", epochString(c.epoch), "epoch", b.epoch)
			newEpoch = true
		} else {
			b.acked, b.gaps = c.acked, c.gaps
		}
		if seqErr == nil && known >= b.hwm {
			b.log.Warn("seq file is behind the cursor (damaged or restored from an old copy): new seqs start above the cursor's",
				"seq_hwm", b.hwm, "cursor_highest", known)
		}
	} else if !errors.Is(curErr, fs.ErrNotExist) || len(files) > 0 {
		b.log.Warn("cursor unreadable: every record on disk will be delivered again", "err", curErr)
	}

	var (
		segs     []*segment
		lost     []lostRange
		high     uint64 // highest seq covered by the segments so far
		maxFirst uint64
		removed  bool
		torn     bool
	)
	for i, sf := range files {
		path := filepath.Join(b.dir, sf.name)
		var nextFirst uint64
		if i+1 < len(files) {
			nextFirst = files[i+1].first
		}
		seg, l, cut, err := b.scanSegment(path, sf.first, high, nextFirst, i == len(files)-1, readOnly)
		if err != nil {
			return err
		}
		torn = torn || cut
		// Even a file that held no record shows its seq was about to be
		// handed out: never hand it out again.
		maxFirst = max(maxFirst, sf.first)
		if seg == nil {
			removed = removed || !readOnly
			continue
		}
		lost = append(lost, l...)
		segs = append(segs, seg)
		high = max(high, seg.last, seg.first-1)
	}
	if removed {
		if err := b.fs.SyncDir(b.dir); err != nil {
			return fmt.Errorf("buffer: %w", err)
		}
	}

	b.mu.Lock()
	b.segs = segs
	b.bytes = 0
	for _, s := range segs {
		b.bytes += s.fileSize
	}
	b.nextSeq = max(b.hwm, high+1, maxFirst+1, known+1, 1)
	for _, l := range lost {
		if n := b.markLostLocked(l.lo, l.hi, ReasonCorrupt); n > 0 {
			b.log.Warn("skipped corrupt records", "file", l.path, "records", n, "from", l.lo, "to", l.hi)
		}
	}
	// Seqs above everything recorded and below the next seq were
	// reserved by a process that crashed (or lost in the torn tail it
	// left): say so, so consumers can tell them from a loss. A clean
	// stop saves the exact next seq and leaves none.
	// ReadStats (readOnly) cannot tell a crash from an agent that is
	// running and simply has not used its reserve yet: it says nothing.
	if used := max(high, known); b.nextSeq > used+1 && !readOnly {
		reason := ReasonUnused
		if torn {
			reason = ReasonTorn
		}
		b.markLostLocked(used+1, b.nextSeq-1, reason)
	}
	if newEpoch && !readOnly {
		// Seqs of a new epoch that no record on disk has were never
		// used in it.
		var prev uint64
		for _, s := range segs {
			b.markLostLocked(prev+1, s.first-1, ReasonUnused)
			prev = max(prev, s.last)
		}
		b.markLostLocked(prev+1, b.nextSeq-1, ReasonUnused)
	}
	lostAny := b.cursorDirty
	b.normalizeLocked()
	b.mu.Unlock()
	if readOnly {
		return nil
	}

	var created bool
	if b.seqf, created, err = openSlotFile(b.fs, seqPath, seqMagic, seqSlotVersion, seqTx); err != nil {
		return fmt.Errorf("buffer: %w", err)
	}
	if newEpoch {
		if err := b.reserve(b.nextSeq); err != nil {
			return err
		}
	}
	createdCursor := false
	if b.curf, createdCursor, err = openSlotFile(b.fs, curPath, cursorMagic, cursorSlotVersion, curTx); err != nil {
		return fmt.Errorf("buffer: %w", err)
	}
	if created || createdCursor {
		if err := b.fs.SyncDir(b.dir); err != nil {
			return fmt.Errorf("buffer: %w", err)
		}
	}
	if lostAny || createdCursor {
		// Counted drops must be durable before anything else happens,
		// or the next recovery would count them again.
		if err := b.saveCursor(true); err != nil {
			return err
		}
	}
	return nil
}

// lostRange is a seq range recovery found missing from a segment.
type lostRange struct {
	lo, hi uint64
	path   string
}

// scanSegment validates one segment file. high is the highest seq covered by
// earlier segments (a frame at or below it is a seq going backwards, so it
// is skipped); nextFirst is the next segment's first seq (0 if last). It
// returns nil for a file too short to hold a header, which it removes
// (unless readOnly): such a file is a roll that crashed before any record.
func (b *Buffer) scanSegment(path string, nameFirst, high, nextFirst uint64, isLast, readOnly bool) (seg *segment, lost []lostRange, torn bool, err error) {
	f, err := b.fs.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, false, nil // deleted while ReadStats was listing
		}
		return nil, nil, false, fmt.Errorf("buffer: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, false, fmt.Errorf("buffer: %w", err)
	}
	size := fi.Size()
	if size < segHeaderSize {
		if !readOnly {
			b.log.Info("removing segment without a header (crash during roll)", "file", path)
			if err := b.fs.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, nil, false, fmt.Errorf("buffer: %w", err)
			}
		}
		return nil, nil, false, nil
	}
	first := max(nameFirst, high+1)
	seg = &segment{first: first, last: first - 1, size: segHeaderSize, fileSize: size, path: path}
	hdr := make([]byte, segHeaderSize)
	if _, err := f.ReadAt(hdr, 0); err != nil {
		return nil, nil, false, fmt.Errorf("buffer: read %s: %w", path, err)
	}
	if err := checkSegHeader(hdr, nameFirst); err != nil {
		b.log.Warn("segment header invalid; scanning its frames anyway", "file", path, "err", err)
	}
	sc := scanner{r: f, off: segHeaderSize, end: size, min: first, maxData: b.maxFrameData()}
	expected := first
	var trailing int64
	for {
		fr, skipped, ok := sc.next()
		if !ok {
			trailing = skipped
			break
		}
		if skipped > 0 {
			b.log.Warn("corrupt bytes in segment skipped", "file", path, "offset", fr.off-skipped, "bytes", skipped)
		}
		if fr.seq > expected {
			lost = append(lost, lostRange{expected, fr.seq - 1, path})
		}
		seg.addIndex(fr.seq, fr.off)
		seg.last, seg.size = fr.seq, fr.off+fr.size
		expected = fr.seq + 1
	}
	if sc.err != nil {
		// An unreadable block: keep what was read, never truncate over
		// it, and count what follows as lost if its extent is known.
		b.log.Error("read error in segment; records after it are skipped", "file", path, "offset", sc.off, "err", sc.err)
		if !isLast && nextFirst > expected {
			lost = append(lost, lostRange{expected, nextFirst - 1, path})
		}
		return seg, lost, false, nil
	}
	if trailing == 0 {
		return seg, lost, false, nil
	}
	if !isLast {
		// A sealed segment was fsynced before the next one began, so
		// garbage at its end is corruption (or SyncNever and a power
		// loss): whatever lay between it and the next segment is lost.
		b.log.Warn("bytes at the end of a sealed segment form no record", "file", path, "bytes", trailing)
		if nextFirst > expected {
			lost = append(lost, lostRange{expected, nextFirst - 1, path})
		}
		return seg, lost, false, nil
	}
	// A torn tail: the last write before a crash. Cut it so appends after
	// this recovery follow valid frames (new appends go to a new segment,
	// and a segment that is not the last must end on a frame boundary).
	b.log.Warn("cutting torn tail", "file", path, "offset", seg.size, "bytes", trailing)
	if readOnly {
		return seg, lost, true, nil
	}
	wf, err := b.fs.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, nil, false, fmt.Errorf("buffer: %w", err)
	}
	err = wf.Truncate(seg.size)
	if err == nil {
		err = wf.Sync()
	}
	if cerr := wf.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, nil, false, fmt.Errorf("buffer: cut torn tail of %s: %w", path, err)
	}
	seg.fileSize = seg.size
	return seg, lost, true, nil
}
