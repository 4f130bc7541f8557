package buffer

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Record is one payload with the seq the buffer gave it.
type Record struct {
	Seq  uint64
	Data []byte
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

// Option changes how Open works.
type Option func(*options)

type options struct {
	fs          FS
	log         *slog.Logger
	gapRec      func(Gap) []byte
	failpoint   func(name string) error
	statfsDelay time.Duration
}

// WithFS makes the buffer do all file I/O through fsys instead of OSFS.
func WithFS(fsys FS) Option { return func(o *options) { o.fs = fsys } }

// WithLogger makes the buffer log drops, skipped corruption and repaired torn
// tails to l. The default discards logs; Stats reports drops either way.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithGapRecords makes the buffer write a record for every gap, encoded by
// rec, so consumers learn of lost seqs from the stream itself: each gap is
// written once (ahead of the next append, or at once when the loop is
// idle), survives a crash until then in the cursor, and takes a seq of its
// own like any record. Without it gaps are only counted (Stats).
func WithGapRecords(rec func(Gap) []byte) Option { return func(o *options) { o.gapRec = rec } }

// withFailpoint installs a hook called at each named step of a segment roll,
// segment delete, cursor save and seq reservation (names as in failpoints.go);
// a non-nil error stops that operation there, which tests use to simulate a
// crash between any two steps.
func withFailpoint(f func(name string) error) Option {
	return func(o *options) { o.failpoint = f }
}

// withStatfsDelay sets how stale the free-space figure may get (tests use 0).
func withStatfsDelay(d time.Duration) Option { return func(o *options) { o.statfsDelay = d } }

// Group commit bounds: a batch collects whatever appends are queued, up to
// maxBatchBytes, so one write (and under SyncAlways one fsync) serves them all.
const (
	maxBatchBytes = 1 << 20
	appendQueue   = 64
	// seqReserve is how far ahead seqs are reserved: one fsync of the seq
	// file per seqReserve records.
	seqReserve = 4096
	// statfsEvery bounds how stale the free-space figure (and the check
	// that the directory is still there) may get: another process can
	// fill the disk, or someone can delete the directory, at any time.
	statfsEvery      = 256 << 10
	statfsEveryDelay = time.Second
)

// Buffer is a durable FIFO of records on disk. All methods are safe for
// concurrent use, except that one Reader must not be used concurrently.
type Buffer struct {
	// instantiation time metadata
	cfg         Config
	dir         string
	fs          FS
	log         *slog.Logger
	fp          func(name string) error
	statfsDelay time.Duration
	gapRec      func(Gap) []byte
	epoch       string
	lock        io.Closer
	dirInfo     os.FileInfo // the directory as opened: a deleted or replaced one is recreated

	// file state owned by the loop goroutine (and by Open before it starts)
	tail           File // write handle of tailSeg; nil: the next append rolls
	seqf           *slotFile
	curf           *slotFile
	hwm            uint64 // every seq handed out is below hwm, and hwm is durable
	seqState       seqState
	enc            []byte
	dirty          bool // written since the last data fsync
	lastSync       time.Time
	lastCursorSave time.Time
	free           int64 // estimate of the file system's available bytes
	freeKnown      bool
	statfsAt       time.Time
	sinceStatfs    int64
	failingSince   time.Time // first of a run of failed commits (not for space); zero when fine

	mu sync.Mutex
	// run-time state guarded by mu (also persisted to disk)
	nextSeq       uint64
	acked         rangeSet // seqs that need no delivery: acked, dropped, skipped, never written
	lost          [numReasons]int64
	refused       int64
	droppedRanges []seqRange
	gaps          []Gap      // lost ranges not yet written as gap records
	gapsTaken     int        // gaps[:gapsTaken] are being written: never merged into
	segs          []*segment // ascending, non-overlapping [first, last]
	tailSeg       *segment
	bytes         int64
	cursorDirty   bool
	closed        bool

	closeMu sync.RWMutex // Append holds it shared while queueing
	closing bool

	appendc  chan *appendReq
	ackc     chan struct{}
	syncc    chan chan error
	notify   chan struct{}
	quit     chan struct{}
	loopDone chan struct{}
	loopErr  error

	closeOnce sync.Once
	closeErr  error
}

type appendReq struct {
	payloads [][]byte
	size     int
	first    uint64
	done     chan error
}

// Open opens (creating if needed) the buffer in cfg.Dir, takes its lock,
// recovers what is on disk and starts the background goroutine that Close
// stops. A second Open of the same directory returns an error wrapping
// ErrLocked.
func Open(cfg Config, opts ...Option) (*Buffer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("buffer: config: %w", err)
	}
	b, err := newBuffer(cfg, opts)
	if err != nil {
		return nil, err
	}
	if err := b.fs.MkdirAll(b.dir, 0o750); err != nil {
		return nil, fmt.Errorf("buffer: %w", err)
	}
	if b.dirInfo, err = b.fs.Stat(b.dir); err != nil {
		return nil, fmt.Errorf("buffer: %w", err)
	}
	lockPath := filepath.Join(b.dir, lockFile)
	lock, err := b.fs.Lock(lockPath)
	if err != nil {
		if errors.Is(err, ErrLocked) {
			return nil, fmt.Errorf("%w: %s is in use (lock file %s)", ErrLocked, b.dir, lockPath)
		}
		return nil, fmt.Errorf("buffer: lock %s: %w", lockPath, err)
	}
	b.lock = lock
	if err := b.recover(false); err != nil {
		b.closeFiles()
		lock.Close()
		return nil, err
	}
	go b.loop()
	return b, nil
}

func newBuffer(cfg Config, opts []Option) (*Buffer, error) {
	o := options{
		fs:          OSFS{},
		log:         slog.New(slog.DiscardHandler),
		failpoint:   func(string) error { return nil },
		statfsDelay: statfsEveryDelay,
	}
	for _, opt := range opts {
		opt(&o)
	}
	return &Buffer{
		cfg:         cfg,
		dir:         cfg.Dir,
		fs:          o.fs,
		log:         o.log.With("component", "buffer", "dir", cfg.Dir),
		fp:          o.failpoint,
		statfsDelay: o.statfsDelay,
		gapRec:      o.gapRec,
		appendc:     make(chan *appendReq, appendQueue),
		ackc:        make(chan struct{}, 1),
		syncc:       make(chan chan error),
		notify:      make(chan struct{}, 1),
		quit:        make(chan struct{}),
		loopDone:    make(chan struct{}),
	}, nil
}

// Append writes payloads as consecutive records and returns the seq of the
// first. Concurrent calls may be merged into one write (and, under
// SyncAlways, one fsync); each call's records stay consecutive. It returns
// once the data is written to the file (and fsynced under SyncAlways): from
// then on a kill -9 loses nothing. An error means none of the payloads was
// accepted, except that a failed fsync under SyncAlways leaves them written
// but of unknown durability. Payloads are copied; the caller may reuse them.
func (b *Buffer) Append(payloads ...[]byte) (first uint64, err error) {
	if len(payloads) == 0 {
		return b.NextSeq(), nil
	}
	size := 0
	limit := int(b.maxFrameData())
	for _, p := range payloads {
		if len(p) > limit {
			return 0, fmt.Errorf("%w: %d bytes, segment_bytes allows %d", ErrTooLarge, len(p), limit)
		}
		size += frameHeaderSize + len(p)
	}
	req := &appendReq{payloads: payloads, size: size, done: make(chan error, 1)}
	b.closeMu.RLock()
	if b.closing {
		b.closeMu.RUnlock()
		return 0, ErrClosed
	}
	b.appendc <- req
	b.closeMu.RUnlock()
	if err := <-req.done; err != nil {
		return 0, err
	}
	return req.first, nil
}

// maxFrameData is the largest payload a segment holds: the limit on Append,
// and on a length read from disk, so bad bytes cannot make the buffer
// allocate more than a segment.
func (b *Buffer) maxFrameData() int64 {
	return int64(b.cfg.SegmentBytes) - segHeaderSize - frameHeaderSize
}

// Epoch returns the random id made when the buffer directory was created from
// nothing (or when its seq file was lost, since then seqs may restart).
func (b *Buffer) Epoch() string { return b.epoch }

// NextSeq returns the seq the next Append will get.
func (b *Buffer) NextSeq() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.nextSeq
}

// Notify returns a channel that receives after each Append (sends do not
// block and coalesce: capacity one).
func (b *Buffer) Notify() <-chan struct{} { return b.notify }

// Ack marks seqs as delivered, in any order and any subset; duplicates and
// seqs that are unknown or already gone are ignored. Acks are persisted at most
// every sync_interval and on Close, so after a kill -9 only the acks of the
// last interval are lost (their records are delivered again).
func (b *Buffer) Ack(seqs ...uint64) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	valid := seqs
	for i, s := range seqs {
		if s == 0 || s >= b.nextSeq {
			// Copy only when something must be filtered out.
			valid = append([]uint64(nil), seqs[:i]...)
			for _, s := range seqs[i:] {
				if s != 0 && s < b.nextSeq {
					valid = append(valid, s)
				}
			}
			break
		}
	}
	n := b.acked.addSeqs(valid)
	if n > 0 {
		b.cursorDirty = true
	}
	b.mu.Unlock()
	if n > 0 {
		select {
		case b.ackc <- struct{}{}:
		default:
		}
	}
	return nil
}

// Discard gives up on seqs the caller cannot deliver (a record that does
// not decode, or that no message the broker takes can hold): they count as
// lost for reason and are explained in band like any other gap, then
// treated as acknowledged.
func (b *Buffer) Discard(reason Reason, seqs ...uint64) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	var n int64
	for _, s := range seqs {
		if s != 0 && s < b.nextSeq {
			n += b.markLostLocked(s, s, reason)
		}
	}
	b.mu.Unlock()
	if n > 0 {
		b.log.Warn("records discarded", "reason", reason.String(), "records", n)
		select {
		case b.ackc <- struct{}{}:
		default:
		}
	}
	return nil
}

// Sync fsyncs written data and saves the cursor now, whatever the policy.
func (b *Buffer) Sync() error {
	ch := make(chan error, 1)
	select {
	case b.syncc <- ch:
		return <-ch
	case <-b.loopDone:
		return ErrClosed
	}
}

// Close stops intake, writes queued appends, fsyncs data, saves the cursor,
// and releases the lock. It is idempotent; later calls return the first
// result.
func (b *Buffer) Close() error {
	b.closeOnce.Do(func() {
		b.closeMu.Lock()
		b.closing = true
		b.closeMu.Unlock()
		close(b.quit)
		<-b.loopDone
		err := b.loopErr
		b.mu.Lock()
		b.closed = true
		for _, s := range b.segs {
			if s.rf != nil && s.refs == 0 {
				s.rf.Close()
				s.rf = nil
			}
		}
		b.mu.Unlock()
		if cerr := b.closeFiles(); err == nil {
			err = cerr
		}
		if cerr := b.lock.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("buffer: release lock: %w", cerr)
		}
		b.closeErr = err
	})
	return b.closeErr
}

func (b *Buffer) closeFiles() error {
	var errs []error
	if b.tail != nil {
		errs = append(errs, b.tail.Close())
		b.tail = nil
	}
	if b.seqf != nil {
		errs = append(errs, b.seqf.close())
		b.seqf = nil
	}
	if b.curf != nil {
		errs = append(errs, b.curf.close())
		b.curf = nil
	}
	return errors.Join(errs...)
}

// loop is the one goroutine that owns the files: it commits appends, fsyncs,
// saves the cursor and deletes segments.
func (b *Buffer) loop() {
	defer close(b.loopDone)
	syncT := time.NewTimer(time.Hour)
	syncT.Stop()
	curT := time.NewTimer(time.Hour)
	curT.Stop()
	var syncC, curC <-chan time.Time // nil while the timer is not armed
	arm := func() {
		if syncC == nil && b.dirty && b.cfg.Sync == SyncInterval {
			syncT.Reset(time.Until(b.lastSync.Add(b.cfg.SyncInterval)))
			syncC = syncT.C
		}
		if curC == nil && b.isCursorDirty() {
			curT.Reset(time.Until(b.lastCursorSave.Add(b.cfg.SyncInterval)))
			curC = curT.C
		}
	}
	// Segments fully acked in a cursor that was saved just before a crash
	// (or found so by recovery) go now, and the gaps recovery found are
	// written before any new reading.
	b.deleteAcked()
	b.flushGaps()
	arm()
	for {
		select {
		case req := <-b.appendc:
			b.commitQueued(req)
		case <-syncC:
			syncC = nil
			if err := b.syncData(); err != nil {
				b.log.Error("fsync failed", "err", err)
			}
		case <-b.ackc:
			b.deleteAcked()
			b.flushGaps()
		case <-curC:
			curC = nil
			if err := b.saveCursor(false); err != nil {
				b.log.Error("saving cursor failed", "err", err)
			}
		case ch := <-b.syncc:
			ch <- b.syncAll()
		case <-b.quit:
			b.shutdown()
			syncT.Stop()
			curT.Stop()
			return
		}
		arm()
	}
}

func (b *Buffer) isCursorDirty() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cursorDirty
}

// shutdown runs on the loop goroutine after Close stopped intake.
func (b *Buffer) shutdown() {
	for {
		select {
		case req := <-b.appendc:
			b.commitQueued(req)
			continue
		default:
		}
		break
	}
	b.flushGaps()
	b.mu.Lock()
	b.closed = true // readers and acks stop before the final save
	b.mu.Unlock()
	b.deleteAcked()
	b.loopErr = errors.Join(b.syncAll(), b.saveExactSeq())
}

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

// syncAll fsyncs data and saves the cursor if it changed.
func (b *Buffer) syncAll() error {
	err := b.syncData()
	if b.isCursorDirty() {
		err = errors.Join(err, b.saveCursor(true))
	}
	return err
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

// FailingSince returns when the buffer began failing every write for a reason
// other than space, or the zero time while writes work.
func (b *Buffer) FailingSince() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.failingSince
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
	gapPay := b.takeGaps()
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
func (b *Buffer) takeGaps() [][]byte {
	if b.gapRec == nil {
		return nil
	}
	b.mu.Lock()
	gaps := append([]Gap(nil), b.gaps...)
	b.gapsTaken = len(gaps)
	b.mu.Unlock()
	pay := make([][]byte, len(gaps))
	for i, g := range gaps {
		pay[i] = b.gapRec(g)
	}
	return pay
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
