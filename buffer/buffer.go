package buffer

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Record is one payload with the seq the buffer gave it.
type Record struct {
	Seq  uint64
	Data []byte
}

// Deps are what a Buffer is given besides its Config (the buffer section
// of the config file). The zero Deps is usable: OSFS, logs discarded, gaps
// only counted.
type Deps struct {
	// FS is where all file I/O goes; nil means OSFS.
	FS FS
	// Log receives drops, skipped corruption and repaired torn tails,
	// with component=buffer added; nil discards (Stats reports drops
	// either way).
	Log *slog.Logger
	// GapRecord, when set, makes the buffer write a record for every gap,
	// encoded by it, so consumers learn of lost seqs from the stream
	// itself: each gap is written once (ahead of the next append, or at
	// once when the loop is idle), survives a crash until then in the
	// cursor, and takes a seq of its own like any record. Nil: gaps are
	// only counted (Stats).
	GapRecord func(Gap) []byte

	// failpoint is called at each named step of a segment roll, segment
	// delete, cursor save and seq reservation (names as in failpoints.go);
	// a non-nil error stops that operation there, which tests use to
	// simulate a crash between any two steps.
	failpoint func(name string) error
	// statfsAlways makes every space check ask the file system (tests);
	// otherwise the free-space figure may be statfsEveryDelay old.
	statfsAlways bool
}

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

	mu sync.Mutex
	// run-time state guarded by mu (also persisted to disk)
	nextSeq       uint64
	acked         rangeSet // seqs that need no delivery: acked, dropped, skipped, never written
	lost          [numReasons]int64
	refused       int64
	droppedRanges []seqRange
	gaps          []Gap      // lost ranges not yet written as gap records
	gapsTaken     int        // gaps[:gapsTaken] are being written: never merged into
	written       []gapAt    // gap records written and not yet acked (this run)
	failingSince  time.Time  // first of a run of failed commits (not for space); zero when fine
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
func Open(cfg Config, deps Deps) (*Buffer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("buffer: config: %w", err)
	}
	b, err := newBuffer(cfg, deps)
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

func newBuffer(cfg Config, d Deps) (*Buffer, error) {
	if d.FS == nil {
		d.FS = OSFS{}
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.failpoint == nil {
		d.failpoint = func(string) error { return nil }
	}
	statfsDelay := statfsEveryDelay
	if d.statfsAlways {
		statfsDelay = 0
	}
	return &Buffer{
		cfg:         cfg,
		dir:         cfg.Dir,
		fs:          d.FS,
		log:         d.Log.With("component", "buffer", "dir", cfg.Dir),
		fp:          d.failpoint,
		statfsDelay: statfsDelay,
		gapRec:      d.GapRecord,
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
	wake := false
	if n > 0 {
		wake = b.ackWakesLoopLocked()
		b.cursorDirty = true
	}
	b.mu.Unlock()
	if wake {
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

// ackWakesLoopLocked says whether an ack needs the loop now; it is called
// before the ack marks the cursor dirty. The loop has three things to do
// after an ack: arm the cursor save timer (only when the cursor was clean:
// while it is dirty the timer is armed already, since every other path that
// dirties it runs on the loop or wakes it), delete a segment the ack may
// have completed (only if there is one besides the tail, which is never
// deleted), and write pending gap records. At steady state none of these
// holds for all but about one ack per sync_interval, and waking the loop
// for every ack cost a goroutine wake-up per reading: at steady state kitd
// run's CPU goes mostly to such wake-ups, not to the work (issue 10; e2e
// BenchmarkSteadyState, README Measurements).
func (b *Buffer) ackWakesLoopLocked() bool {
	if !b.cursorDirty || len(b.gaps) > 0 {
		return true
	}
	for _, s := range b.segs {
		if s != b.tailSeg {
			return true
		}
	}
	return false
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

// syncAll fsyncs data and saves the cursor if it changed.
func (b *Buffer) syncAll() error {
	err := b.syncData()
	if b.isCursorDirty() {
		err = errors.Join(err, b.saveCursor(true))
	}
	return err
}

// FailingSince returns when the buffer began failing every write for a reason
// other than space, or the zero time while writes work.
func (b *Buffer) FailingSince() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.failingSince
}
