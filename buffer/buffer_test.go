package buffer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/datasize"
	"github.com/kitd-dev/kitd/internal/testkit"
)

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	bad := Config{Sync: "sometimes", SegmentBytes: 4 * datasize.MiB, MaxBytes: 4 * datasize.MiB, MinFreeBytes: -1}
	err := bad.Validate()
	if err == nil {
		t.Fatal("accepted a bad config")
	}
	for _, key := range []string{"dir: ", "max_bytes: must be at least 2 segments", "min_free_bytes: ", "sync: ", "sync_interval: must be positive"} {
		if !strings.Contains(err.Error(), "\n"+key) && !strings.HasPrefix(err.Error(), key) {
			t.Errorf("error does not start a line with %q:\n%v", key, err)
		}
	}
	c := DefaultConfig()
	c.SegmentBytes = 100
	if err := c.Validate(); err == nil || !strings.HasPrefix(err.Error(), "segment_bytes: ") {
		t.Errorf("segment_bytes 100: %v", err)
	}
	if _, err := Open(bad, Deps{}); err == nil {
		t.Error("Open accepted a bad config")
	}
}

func TestAppendReadAck(t *testing.T) {
	b := mustOpen(t, testConfig(t.TempDir()))
	defer b.Close()
	if b.NextSeq() != 1 || len(b.Epoch()) != 16 {
		t.Fatalf("fresh buffer: next %d epoch %q", b.NextSeq(), b.Epoch())
	}
	first, err := b.Append([]byte("a"), []byte("b"), []byte("c"))
	if err != nil || first != 1 || b.NextSeq() != 4 {
		t.Fatalf("Append = %d, %v; next %d", first, err, b.NextSeq())
	}
	select {
	case <-b.Notify():
	default:
		t.Fatal("no notification after Append")
	}
	want := appendN(t, b, 500, 100) // several segments
	want[1], want[2], want[3] = []byte("a"), []byte("b"), []byte("c")
	checkRecords(t, readAll(t, b), want)

	if err := b.Ack(2, 2, 9999, 0); err != nil {
		t.Fatal(err)
	}
	delete(want, 2)
	checkRecords(t, readAll(t, b), want)
	st := b.Stats()
	if st.Pending != int64(len(want)) || st.OldestSeq != 1 || string(st.Oldest) != "a" || st.NextSeq != 504 {
		t.Fatalf("stats %+v", st)
	}
	// Ack everything but the tail segment: sealed segments are deleted.
	var all []uint64
	for s := uint64(1); s < 500; s++ {
		all = append(all, s)
	}
	b.Ack(all...)
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	if n := len(segFiles(t, b.dir)); n > 2 {
		t.Errorf("%d segment files left after acking all but the tail", n)
	}
	if st := b.Stats(); st.Pending != 4 || st.OldestSeq != 500 {
		t.Errorf("stats after acks %+v", st)
	}
}

// TestTailAcksDeleteSealedSegments acks each reading as a live publisher
// does, right after its Append, so nearly every ack is of the tail segment
// while the cursor is already dirty: the acks that no longer wake the loop.
// Segments sealed meanwhile must still be deleted once fully acked.
func TestTailAcksDeleteSealedSegments(t *testing.T) {
	b := mustOpen(t, testConfig(t.TempDir())) // cursor saved hourly: dirty throughout
	defer b.Close()
	for i := 0; i < 200; i++ { // 4KiB segments: several rolls
		seq, err := b.Append(payload(b.NextSeq(), 100))
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Ack(seq); err != nil {
			t.Fatal(err)
		}
	}
	testkit.WaitFor(t, 10*time.Second, "acked sealed segments deleted", func() bool {
		return len(segFiles(t, b.dir)) == 1
	})
	if st := b.Stats(); st.Pending != 0 || st.NextSeq != 201 {
		t.Fatalf("stats %+v", st)
	}
}

func TestReaderLimits(t *testing.T) {
	b := mustOpen(t, testConfig(t.TempDir()))
	defer b.Close()
	appendN(t, b, 50, 100)
	r := b.Reader(10, 20)
	recs, _ := r.Next(3, 0)
	if got := seqsOf(recs); len(got) != 3 || got[0] != 10 {
		t.Fatalf("maxRecords 3 from 10: %v", got)
	}
	recs, _ = r.Next(100, 250) // 100-byte payloads: two fit
	if got := seqsOf(recs); len(got) != 2 || got[0] != 13 {
		t.Fatalf("maxBytes 250: %v", got)
	}
	recs, _ = r.Next(100, 1) // at least one, even if larger
	if got := seqsOf(recs); len(got) != 1 || got[0] != 15 {
		t.Fatalf("maxBytes 1: %v", got)
	}
	recs, _ = r.Next(100, 0)
	if got := seqsOf(recs); len(got) != 4 || got[3] != 19 {
		t.Fatalf("until 20: %v", got)
	}
	if recs, _ = r.Next(100, 0); len(recs) != 0 {
		t.Fatalf("past until: %v", seqsOf(recs))
	}
	r.Seek(48)
	if recs, _ = r.Next(100, 0); len(recs) != 0 {
		t.Fatalf("Seek past until: %v", seqsOf(recs))
	}
	r = b.Reader(48, 0)
	b.Ack(49)
	recs, _ = r.Next(100, 0)
	if got := seqsOf(recs); len(got) != 2 || got[0] != 48 || got[1] != 50 {
		t.Fatalf("from 48 with 49 acked: %v", got)
	}
	if recs, _ = r.Next(100, 0); len(recs) != 0 {
		t.Fatal("reader at the tail returned records")
	}
	b.Append([]byte("new"))
	if recs, _ = r.Next(100, 0); len(recs) != 1 || recs[0].Seq != 51 {
		t.Fatalf("tail reader after append: %v", seqsOf(recs))
	}
}

// TestNonPrefixAcksPersist acks a scattered set, closes, and expects exactly
// the rest after reopening.
func TestNonPrefixAcksPersist(t *testing.T) {
	cfg := testConfig(t.TempDir())
	b := mustOpen(t, cfg)
	want := appendN(t, b, 400, 60)
	var acks []uint64
	for s := uint64(1); s <= 400; s++ {
		if s%3 == 0 || (s > 350 && s < 390) || s < 20 {
			acks = append(acks, s)
			delete(want, s)
		}
	}
	// In reverse, to show order does not matter.
	for i, j := 0, len(acks)-1; i < j; i, j = i+1, j-1 {
		acks[i], acks[j] = acks[j], acks[i]
	}
	b.Ack(acks...)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := b.Append([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	b = mustOpen(t, cfg)
	defer b.Close()
	checkRecords(t, readAll(t, b), want)
	if st := b.Stats(); st.Pending != int64(len(want)) {
		t.Fatalf("pending %d, want %d", st.Pending, len(want))
	}
}

// TestDuplicatesBoundedAfterKill: after a kill -9, only acks made since the
// last cursor save come back.
func TestDuplicatesBoundedAfterKill(t *testing.T) {
	cfg := testConfig(t.TempDir())
	b := mustOpen(t, cfg)
	defer b.Close()
	want := appendN(t, b, 300, 50)
	for s := uint64(1); s <= 300; s += 2 {
		b.Ack(s)
		delete(want, s)
	}
	if err := b.Sync(); err != nil { // cursor saved here
		t.Fatal(err)
	}
	since := map[uint64][]byte{}
	for s := uint64(2); s <= 100; s += 2 {
		b.Ack(s)
		since[s] = want[s]
		delete(want, s)
	}
	kill := t.TempDir()
	if err := copyDir(kill, cfg.Dir); err != nil {
		t.Fatal(err)
	}
	cfg.Dir = kill
	b2 := mustOpen(t, cfg)
	defer b2.Close()
	for _, r := range readAll(t, b2) {
		if _, ok := want[r.Seq]; ok {
			delete(want, r.Seq)
			continue
		}
		if _, ok := since[r.Seq]; !ok {
			t.Fatalf("record %d delivered again although acked before the last cursor save", r.Seq)
		}
	}
	if len(want) != 0 {
		t.Fatalf("%d unacked records lost", len(want))
	}
}

func TestLockAndReadStats(t *testing.T) {
	cfg := testConfig(t.TempDir())
	b := mustOpen(t, cfg)
	defer b.Close()
	_, err := Open(cfg, Deps{})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), cfg.Dir) {
		t.Fatalf("second Open: %v", err)
	}
	appendN(t, b, 100, 80)
	b.Ack(1, 2, 3)
	b.Sync()
	st, err := ReadStats(cfg)
	if err != nil {
		t.Fatal(err)
	}
	live := b.Stats()
	if st.Pending != 97 || st.OldestSeq != 4 || st.LastSeq != 100 || live.LastSeq != 100 || st.Epoch != b.Epoch() || st.Bytes != live.Bytes || string(st.Oldest) != string(payload(4, 80)) {
		t.Fatalf("ReadStats %+v\nlive %+v", st, live)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b2 := mustOpen(t, cfg) // the lock is released on Close
	b2.Close()
	missing := cfg
	missing.Dir = filepath.Join(cfg.Dir, "missing")
	if _, err := ReadStats(missing); !errors.Is(err, ErrNoBuffer) || !strings.Contains(err.Error(), missing.Dir) {
		t.Fatalf("ReadStats of a missing dir: %v, want ErrNoBuffer naming it", err)
	}
	// Not a missing directory: another error, for the caller to show.
	notDir := cfg
	notDir.Dir = filepath.Join(cfg.Dir, cursorFile)
	if _, err := ReadStats(notDir); err == nil || errors.Is(err, ErrNoBuffer) {
		t.Fatalf("ReadStats of a file: %v, want an error other than ErrNoBuffer", err)
	}
}

// TestLiveFirstReaders runs a tail reader and a backlog reader side by side,
// each acking what it delivers, while a writer appends.
func TestLiveFirstReaders(t *testing.T) {
	b := mustOpen(t, testConfig(t.TempDir()))
	defer b.Close()
	appendN(t, b, 2000, 60) // the backlog
	split := b.NextSeq()

	var mu sync.Mutex
	acked := map[uint64]bool{}
	deliver := func(recs []Record) {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range recs {
			if acked[r.Seq] {
				t.Errorf("acked record %d returned", r.Seq)
			}
			acked[r.Seq] = true
		}
		b.Ack(seqsOf(recs)...)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the writer
		defer wg.Done()
		for i := 0; i < 500; i++ {
			if _, err := b.Append(payload(uint64(i), 60)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var liveN, backN int
	wg.Add(2)
	go func() { // live: starts at the head, follows Notify
		defer wg.Done()
		r := b.Reader(split, 0)
		for {
			recs, err := r.Next(10, 0)
			if err != nil {
				t.Error(err)
				return
			}
			liveN += len(recs)
			deliver(recs)
			if len(recs) == 0 {
				select {
				case <-b.Notify():
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
		}
	}()
	go func() { // backfill: only the backlog
		defer wg.Done()
		r := b.Reader(1, split)
		for {
			recs, err := r.Next(10, 0)
			if err != nil {
				t.Error(err)
				return
			}
			if len(recs) == 0 {
				return
			}
			for _, rec := range recs {
				if rec.Seq >= split {
					t.Errorf("backlog reader returned %d >= until %d", rec.Seq, split)
				}
			}
			backN += len(recs)
			deliver(recs)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n == 2500 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if liveN != 500 || backN != 2000 {
		t.Fatalf("live delivered %d (want 500), backlog %d (want 2000)", liveN, backN)
	}
	if recs := readAll(t, b); len(recs) != 0 {
		t.Fatalf("%d records still readable after all were acked", len(recs))
	}
	b.Sync()
	if st := b.Stats(); st.Pending != 0 || len(segFiles(t, b.dir)) > 1 {
		t.Fatalf("after all acked: %+v, %d files", st, len(segFiles(t, b.dir)))
	}
}

// TestSyncPolicies counts data fsyncs under each policy.
func TestSyncPolicies(t *testing.T) {
	// run returns the data fsyncs of n appends and how long the appends
	// took. It waits for the fsyncs to stop rather than for a fixed time:
	// on a loaded machine the interval fsync of the last append may come
	// late, but it is the last one.
	run := func(policy SyncPolicy, interval time.Duration, n int) (int64, time.Duration) {
		fsys := newFaultFS()
		cfg := testConfig(t.TempDir())
		cfg.SegmentBytes = 1 * datasize.MiB
		cfg.MaxBytes = 4 * datasize.MiB
		cfg.Sync, cfg.SyncInterval = policy, interval
		b := mustOpen(t, cfg, Deps{FS: fsys})
		start := time.Now()
		for i := 0; i < n; i++ {
			if _, err := b.Append([]byte("x")); err != nil {
				t.Fatal(err)
			}
			if policy == SyncAlways && fsys.segSyncs.Load() < int64(i+1) {
				t.Fatalf("always: Append %d returned before its fsync", i)
			}
		}
		appending := time.Since(start)
		if policy == SyncInterval {
			// The segment header's fsync, then the interval's.
			testkit.WaitFor(t, 10*time.Second, "the interval fsync", func() bool { return fsys.segSyncs.Load() >= 2 })
		}
		// Idle, the fsyncs stop: three quiet intervals in a row, within
		// ten seconds.
		syncs := fsys.segSyncs.Load()
		for idle := time.Now(); ; {
			time.Sleep(3 * interval)
			s := fsys.segSyncs.Load()
			if s == syncs {
				break
			}
			if time.Since(idle) > 10*time.Second {
				t.Errorf("%s: fsyncs go on while idle (%d -> %d)", policy, syncs, s)
				break
			}
			syncs = s
		}
		b.Close()
		return syncs, appending
	}
	if s, _ := run(SyncAlways, 20*time.Millisecond, 50); s < 50 {
		t.Errorf("always: %d fsyncs for 50 appends", s)
	}
	if s, _ := run(SyncNever, 20*time.Millisecond, 50); s != 1 { // the new segment's header
		t.Errorf("never: %d fsyncs", s)
	}
	// One roll fsync of the header, then interval fsyncs at least an
	// interval apart: as many as the appends spanned intervals, plus the
	// one after the last append. 50 quick appends usually take far less
	// than an interval (2 fsyncs); counted against the time they took, a
	// loaded machine cannot fail this, an fsync per append still does.
	if s, took := run(SyncInterval, 20*time.Millisecond, 50); s < 2 || s > int64(took/(20*time.Millisecond))+3 {
		t.Errorf("interval: %d fsyncs for 50 appends in %v", s, took)
	}
}

// TestGroupCommit: concurrent appends share writes and fsyncs.
func TestGroupCommit(t *testing.T) {
	fsys := newFaultFS()
	fsys.syncDelay = 2 * time.Millisecond // a slow SD card
	cfg := testConfig(t.TempDir())
	cfg.SegmentBytes = 1 * datasize.MiB
	cfg.MaxBytes = 4 * datasize.MiB
	cfg.Sync = SyncAlways
	b := mustOpen(t, cfg, Deps{FS: fsys})
	defer b.Close()
	const writers, each = 8, 50
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[uint64]bool{}
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				first, err := b.Append(payload(0, 100), payload(1, 100))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[first] || seen[first+1] {
					t.Errorf("seq %d handed out twice", first)
				}
				seen[first], seen[first+1] = true, true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	appends := int64(writers * each)
	w, s := fsys.segWrites.Load(), fsys.segSyncs.Load()
	t.Logf("%d appends: %d segment writes, %d fsyncs", appends, w, s)
	if w >= appends || s >= appends {
		t.Errorf("no group commit: %d appends, %d writes, %d fsyncs", appends, w, s)
	}
	if len(seen) != 2*int(appends) || b.NextSeq() != uint64(2*appends+1) {
		t.Errorf("seqs: %d distinct, next %d", len(seen), b.NextSeq())
	}
}

// TestMaxBytesDropsOldest fills past max_bytes without acks.
func TestMaxBytesDropsOldest(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.MaxBytes = 4 * cfg.SegmentBytes
	b := mustOpen(t, cfg)
	early := b.Reader(0, 0) // a reader positioned in what will be dropped
	want := appendN(t, b, 10, 100)
	if recs, _ := early.Next(5, 0); len(recs) != 5 {
		t.Fatalf("early reader: %d records", len(recs))
	}
	for k, v := range appendN(t, b, 390, 100) { // ~48KiB into 16KiB
		want[k] = v
	}
	st := b.Stats()
	if st.Bytes > int64(cfg.MaxBytes) || st.Dropped == 0 || len(st.DroppedRanges) == 0 {
		t.Fatalf("stats %+v", st)
	}
	if st.DroppedRanges[0][0] != 1 {
		t.Fatalf("first dropped range %v does not start at the oldest record", st.DroppedRanges[0])
	}
	var dropped int64
	for _, r := range st.DroppedRanges {
		dropped += int64(r[1] - r[0] + 1)
		for s := r[0]; s <= r[1]; s++ {
			delete(want, s)
		}
	}
	if len(st.DroppedRanges) < maxDroppedRanges && dropped != st.Dropped {
		t.Fatalf("ranges cover %d, Dropped %d", dropped, st.Dropped)
	}
	if st.Pending+st.Dropped != 400 {
		t.Fatalf("pending %d + dropped %d != 400", st.Pending, st.Dropped)
	}
	checkRecords(t, readAll(t, b), want)
	var rest []Record
	for {
		recs, err := early.Next(50, 0)
		if err != nil || len(recs) == 0 {
			break
		}
		rest = append(rest, recs...)
	}
	checkRecords(t, rest, want) // skipped the dropped segments, nothing else
	b.Close()
	b = mustOpen(t, cfg)
	defer b.Close()
	if st2 := b.Stats(); st2.Dropped != st.Dropped || len(st2.DroppedRanges) != len(st.DroppedRanges) {
		t.Fatalf("drops not persisted: %+v vs %+v", st2, st)
	}
	checkRecords(t, readAll(t, b), want)
}

// TestMinFreeDropsOldest: a file system that fills as we write.
func TestMinFreeDropsOldest(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.MinFreeBytes = 1 * datasize.MiB
	fsys := newFaultFS()
	capacity := int64(cfg.MinFreeBytes) + 5*int64(cfg.SegmentBytes)
	fsys.free = func() int64 {
		used := int64(0)
		for _, p := range segFiles(t, cfg.Dir) {
			used += fileSize(t, p)
		}
		return capacity - used
	}
	b := mustOpen(t, cfg, Deps{FS: fsys, statfsAlways: true})
	defer b.Close()
	appendN(t, b, 600, 100)
	st := b.Stats()
	if st.Dropped == 0 || st.DroppedRanges[len(st.DroppedRanges)-1][1] >= st.OldestSeq {
		t.Fatalf("nothing dropped, or not the oldest: %+v", st)
	}
	if free := fsys.free(); free < int64(cfg.MinFreeBytes)-int64(cfg.SegmentBytes) {
		t.Fatalf("free space %d fell well below min_free_bytes %d", free, cfg.MinFreeBytes)
	}
	if st.Pending+st.Dropped != 600 {
		t.Fatalf("pending %d + dropped %d != 600", st.Pending, st.Dropped)
	}
	// Another process took the file system below min_free_bytes: the
	// buffer gives back every segment but the one being written, and
	// new readings are still taken.
	fsys.mu.Lock()
	fsys.free = func() int64 { return int64(cfg.MinFreeBytes) / 2 }
	fsys.mu.Unlock()
	for i := 0; i < 40; i++ {
		if _, err := b.Append([]byte("x")); err != nil {
			t.Fatalf("Append below min_free_bytes: %v", err)
		}
	}
	if n := len(segFiles(t, cfg.Dir)); n > 2 {
		t.Fatalf("%d segments kept below min_free_bytes, want at most 2", n)
	}
	st = b.Stats()
	if st.Pending+st.Dropped != 640 || st.Lost["full"] != st.Dropped {
		t.Fatalf("pending %d + dropped %d != 640, or not all for full: %+v", st.Pending, st.Dropped, st.Lost)
	}
	fsys.mu.Lock()
	fsys.free = func() int64 { return capacity }
	fsys.mu.Unlock()
	if _, err := b.Append([]byte("y")); err != nil {
		t.Fatalf("Append after space came back: %v", err)
	}
}

// TestENOSPCDropsOldest: a write that fails with ENOSPC (the file system
// filled by anyone) drops the oldest segment and is retried, so the new
// readings are taken and only old ones are lost, counted as full.
func TestENOSPCDropsOldest(t *testing.T) {
	for _, tc := range []struct {
		name        string
		seg, create bool
	}{{"write", true, false}, {"roll", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := newFaultFS()
			cfg := testConfig(t.TempDir())
			b := mustOpen(t, cfg, Deps{FS: fsys})
			want := appendN(t, b, 100, 100) // three segments
			first := segFiles(t, cfg.Dir)[0]
			fsys.mu.Lock()
			fsys.enospcSeg, fsys.enospcNew, fsys.freedByRemove = tc.seg, tc.create, true
			fsys.mu.Unlock()
			// Fill the tail so the roll case needs a new segment.
			var err error
			for i := 0; i < 40 && err == nil; i++ {
				p := payload(b.NextSeq(), 100)
				var seq uint64
				if seq, err = b.Append(p); err == nil {
					want[seq] = p
				}
			}
			if err != nil {
				t.Fatalf("Append on ENOSPC with old segments to drop: %v", err)
			}
			if _, err := os.Stat(first); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("oldest segment %s not dropped: %v", first, err)
			}
			st := b.Stats()
			if st.Dropped == 0 || st.Lost["full"] != st.Dropped || st.DroppedRanges[0][0] != 1 {
				t.Fatalf("drop not recorded as full from seq 1: %+v", st)
			}
			for s := range want {
				if s <= st.DroppedRanges[0][1] {
					delete(want, s)
				}
			}
			checkRecords(t, readAll(t, b), want)
			b.Close()
			b = mustOpen(t, cfg)
			defer b.Close()
			checkRecords(t, readAll(t, b), want)
		})
	}
}

// TestENOSPCNothingToDrop: when even dropping everything leaves no space,
// the reading is refused, but it gets a seq and is counted and gapped as
// full, so the loss is explained; appends work again once there is space.
func TestENOSPCNothingToDrop(t *testing.T) {
	fsys := newFaultFS()
	cfg := testConfig(t.TempDir())
	var gaps []Gap
	var mu sync.Mutex
	rec := func(g Gap) []byte {
		mu.Lock()
		gaps = append(gaps, g)
		mu.Unlock()
		return []byte(fmt.Sprintf("gap %d-%d %s", g.From, g.To, g.Reason))
	}
	b := mustOpen(t, cfg, Deps{FS: fsys, GapRecord: rec})
	defer b.Close()
	appendN(t, b, 10, 100)
	fsys.setENOSPC(true, true)
	_, err := b.Append(payload(11, 100), payload(12, 100))
	if !errors.Is(err, ErrNoSpace) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Append with nothing to drop: %v", err)
	}
	st := b.Stats()
	if st.Lost["full"] != 12 || st.Dropped != 12 || st.NextSeq != 13 || st.Pending != 0 {
		t.Fatalf("want 10 dropped and 2 refused, all full, next seq 13: %+v", st)
	}
	fsys.setENOSPC(false, false)
	seq, err := b.Append([]byte("back"))
	if err != nil {
		t.Fatal(err)
	}
	recs := readAll(t, b)
	if len(recs) != 2 || string(recs[0].Data) != "gap 1-12 full" || recs[1].Seq != seq || seq != recs[0].Seq+1 {
		t.Fatalf("want one gap record for 1-12 and then the reading: %q", recs)
	}
}

// TestDroppedGapRecordIsWrittenAgain: a full disk drops the segment that
// holds the gap record of an earlier drop (the disk stayed full). Its
// explanation must not go with it: the next gap record covers both drops.
// (Found by e2e's full-disk test once it filled the disk while the first
// segment was still the one being written.)
func TestDroppedGapRecordIsWrittenAgain(t *testing.T) {
	fsys := newFaultFS()
	fsys.freedByRemove = true // dropping a segment frees its blocks
	cfg := testConfig(t.TempDir())
	rec := func(g Gap) []byte { return []byte(fmt.Sprintf("gap %d-%d %s", g.From, g.To, g.Reason)) }
	b := mustOpen(t, cfg, Deps{FS: fsys, GapRecord: rec})
	defer b.Close()
	appendN(t, b, 10, 100) // 1-10
	fsys.setENOSPC(true, false)
	appendN(t, b, 5, 100) // drops 1-10: gap record 11, readings 12-16
	fsys.setENOSPC(true, false)
	appendN(t, b, 1, 100) // drops 11-16, the gap record with them: 17 explains, 18 reads
	recs := readAll(t, b)
	if len(recs) != 2 || string(recs[0].Data) != "gap 1-16 full" || recs[1].Seq != recs[0].Seq+1 {
		var got []string
		for _, r := range recs {
			got = append(got, fmt.Sprintf("%d:%.20q", r.Seq, r.Data))
		}
		t.Fatalf("want one gap record for 1-16 and then the reading, got %v", got)
	}
	if st := b.Stats(); st.Lost["full"] != 16 {
		t.Fatalf("lost %v, want 16 full", st.Lost)
	}
}

// TestSeqNeverRepeats: across reopen, kill -9 (a copy of the directory while
// open) and power loss (files rolled back to their last fsync).
func TestSeqNeverRepeats(t *testing.T) {
	for _, policy := range []SyncPolicy{SyncAlways, SyncInterval, SyncNever} {
		t.Run(string(policy), func(t *testing.T) {
			fsys := newFaultFS()
			cfg := testConfig(t.TempDir())
			cfg.Sync = policy
			cfg.SegmentBytes = 64 * datasize.KiB
			b := mustOpen(t, cfg, Deps{FS: fsys})
			handed := uint64(0)
			for round := 0; round < 3; round++ {
				batch := make([][]byte, 10)
				for i := range batch {
					batch[i] = []byte("r")
				}
				for i := 0; i < 500; i++ { // crosses a reservation block
					s, err := b.Append(batch...)
					if err != nil {
						t.Fatal(err)
					}
					if s <= handed {
						t.Fatalf("seq %d after %d", s, handed)
					}
					handed = s + 9
				}
				switch round {
				case 0: // clean reopen
					b.Close()
				case 1: // kill -9
					kill := t.TempDir()
					copyDir(kill, cfg.Dir)
					fsys.kill()
					b.Close()
					fsys = newFaultFS()
					cfg.Dir = kill
				case 2: // power loss
					fsys.kill()
					b.Close()
					fsys.powerLoss()
				}
				epoch := b.Epoch()
				b = mustOpen(t, cfg, Deps{FS: newFaultFS()})
				if b.NextSeq() <= handed {
					t.Fatalf("round %d: next seq %d after handing out %d", round, b.NextSeq(), handed)
				}
				if b.Epoch() != epoch {
					t.Fatalf("epoch changed %s -> %s", epoch, b.Epoch())
				}
			}
			b.Close()
			// Losing the seq file changes the epoch; seqs still go on.
			os.Remove(filepath.Join(cfg.Dir, seqFile))
			epoch := b.Epoch()
			b = mustOpen(t, cfg)
			defer b.Close()
			if b.Epoch() == epoch {
				t.Fatal("epoch kept although the seq file was lost")
			}
			if policy == SyncAlways && b.NextSeq() <= handed {
				t.Fatalf("next %d <= %d", b.NextSeq(), handed)
			}
		})
	}
}

// TestReaderSeeksCheaply: a reader near the head of a long log reads about
// one index interval, not the log; a reader that keeps going reads only
// what is new.
func TestReaderSeeksCheaply(t *testing.T) {
	fsys := newFaultFS()
	cfg := testConfig(t.TempDir())
	cfg.SegmentBytes = 4 * datasize.MiB
	cfg.MaxBytes = 16 * datasize.MiB
	b := mustOpen(t, cfg, Deps{FS: fsys})
	defer b.Close()
	batch := make([][]byte, 1000)
	for i := range batch {
		batch[i] = payload(0, 100)
	}
	for i := 0; i < 30; i++ { // 3.6MB in one segment
		b.Append(batch...)
	}
	r := b.Reader(b.NextSeq()-10, 0)
	before := fsys.read.Load()
	if recs, _ := r.Next(100, 0); len(recs) != 10 {
		t.Fatalf("%d records", len(recs))
	}
	if n := fsys.read.Load() - before; n > 2*indexEvery+scanWindow {
		t.Fatalf("reading the last 10 records read %d bytes", n)
	}
	b.Append(batch[:5]...)
	before = fsys.read.Load()
	if recs, _ := r.Next(100, 0); len(recs) != 5 {
		t.Fatalf("%d new records", len(recs))
	}
	if n := fsys.read.Load() - before; n > 5*120 {
		t.Fatalf("reading 5 new records read %d bytes", n)
	}
}
