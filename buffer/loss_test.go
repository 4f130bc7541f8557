package buffer

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// gapLog is a gap record encoder for tests: it writes "gap FROM-TO REASON".
type gapLog struct {
	mu   sync.Mutex
	gaps []Gap
}

func (g *gapLog) rec(gap Gap) []byte {
	g.mu.Lock()
	g.gaps = append(g.gaps, gap)
	g.mu.Unlock()
	return []byte(fmt.Sprintf("gap %d-%d %s", gap.From, gap.To, gap.Reason))
}

// accounted checks what a consumer of the buffer's stream can tell: every
// seq below the highest record read is either a record or covered by a gap
// record in the stream, and returns the gap records' texts.
func accounted(t *testing.T, recs []Record) []string {
	t.Helper()
	seen := map[uint64]bool{}
	var gaps []string
	for _, r := range recs {
		seen[r.Seq] = true
		var from, to uint64
		var reason string
		if n, _ := fmt.Sscanf(string(r.Data), "gap %d-%d %s", &from, &to, &reason); n == 3 {
			gaps = append(gaps, string(r.Data))
			for s := from; s <= to; s++ {
				seen[s] = true
			}
		}
	}
	if len(recs) > 0 {
		for s := uint64(1); s < recs[len(recs)-1].Seq; s++ {
			if !seen[s] {
				t.Fatalf("seq %d is neither delivered nor explained by a gap record (gaps %q)", s, gaps)
			}
		}
	}
	return gaps
}

// runWithoutAppends leaves a buffer whose segments were all acknowledged and
// deleted: the only trace of seqs 1..n is the cursor.
func runWithoutAppends(t *testing.T, cfg Config, n int) {
	b := mustOpen(t, cfg)
	appendN(t, b, n, 50)
	for s := uint64(1); s <= uint64(n); s++ {
		b.Ack(s)
	}
	b.Close()
	b = mustOpen(t, cfg) // deletes the acknowledged segments, appends nothing
	b.Close()
	if segs := segFiles(t, cfg.Dir); len(segs) != 0 {
		t.Fatalf("segments left: %v", segs)
	}
}

// TestSeqFileDamaged: a lost or damaged seq file must never make new
// readings be born inside the acknowledged range (never sent, never
// counted); the new epoch does not inherit acknowledgements, and the seqs
// it skips are explained as unused.
func TestSeqFileDamaged(t *testing.T) {
	damage := map[string]func(path string) error{
		"removed":   os.Remove,
		"zeroed":    func(p string) error { return os.WriteFile(p, make([]byte, 2*slotSize), 0o640) },
		"garbage":   func(p string) error { return os.WriteFile(p, bytes.Repeat([]byte("kitd"), 2*slotSize/4), 0o640) },
		"truncated": func(p string) error { return os.Truncate(p, 10) },
	}
	for name, hurt := range damage {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(t.TempDir())
			runWithoutAppends(t, cfg, 50)
			if err := hurt(filepath.Join(cfg.Dir, seqFile)); err != nil {
				t.Fatal(err)
			}
			var gl gapLog
			b := mustOpen(t, cfg, Deps{GapRecord: gl.rec})
			defer b.Close()
			seq, err := b.Append([]byte("new"))
			if err != nil {
				t.Fatal(err)
			}
			if seq <= 50 {
				t.Fatalf("new reading got seq %d, inside the acknowledged 1..50", seq)
			}
			recs := readAll(t, b)
			if len(recs) == 0 || string(recs[len(recs)-1].Data) != "new" {
				t.Fatalf("the new reading is not delivered: %q", recs)
			}
			if gaps := accounted(t, recs); len(gaps) != 1 || gaps[0] != fmt.Sprintf("gap 1-%d unused", seq-2) {
				t.Fatalf("want one unused gap below the new epoch's first record, got %q", gaps)
			}
		})
	}
}

// TestSeqSlotFlipped: a bit flipped in the newest seq slot must not make the
// loader fall back to an older high-water mark and hand out seqs again.
func TestSeqSlotFlipped(t *testing.T) {
	for slot := 0; slot < 2; slot++ {
		t.Run(fmt.Sprint("slot", slot), func(t *testing.T) {
			cfg := testConfig(t.TempDir())
			b := mustOpen(t, cfg)
			appendN(t, b, seqReserve+100, 20) // a second reservation
			epoch, next := b.Epoch(), b.NextSeq()
			for s := uint64(1); s < next; s++ {
				b.Ack(s)
			}
			b.Close()
			b = mustOpen(t, cfg) // the segments go
			b.Close()
			path := filepath.Join(cfg.Dir, seqFile)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			data[slot*slotSize+slotHeaderSize+9] ^= 0x10 // inside the hwm
			os.WriteFile(path, data, 0o640)
			b = mustOpen(t, cfg)
			defer b.Close()
			if b.Epoch() != epoch || b.NextSeq() != next {
				t.Fatalf("after a flipped bit: epoch %s next %d, want %s %d", b.Epoch(), b.NextSeq(), epoch, next)
			}
		})
	}
}

// TestCursorAheadOfSeqFile: a seq file restored from an old copy (or an
// old slot) behind the cursor: new seqs go above what the cursor knows.
func TestCursorAheadOfSeqFile(t *testing.T) {
	cfg := testConfig(t.TempDir())
	b := mustOpen(t, cfg)
	b.Close()
	old, _ := os.ReadFile(filepath.Join(cfg.Dir, seqFile))
	runWithoutAppends(t, cfg, 30)
	os.WriteFile(filepath.Join(cfg.Dir, seqFile), old, 0o640)
	b = mustOpen(t, cfg)
	defer b.Close()
	if seq, err := b.Append([]byte("x")); err != nil || seq <= 30 {
		t.Fatalf("append after the seq file went back: seq %d, %v", seq, err)
	}
}

// TestCleanStopNoGap and crash gaps: a clean stop persists the exact next
// seq; a kill -9 leaves the reserved rest, which is explained as unused.
func TestCleanStopAndCrashGaps(t *testing.T) {
	cfg := testConfig(t.TempDir())
	var gl gapLog
	b := mustOpen(t, cfg, Deps{GapRecord: gl.rec})
	appendN(t, b, 10, 50)
	b.Close()
	b = mustOpen(t, cfg, Deps{GapRecord: gl.rec})
	if seq, _ := b.Append([]byte("after clean stop")); seq != 11 {
		t.Fatalf("seq after a clean stop: %d, want 11", seq)
	}
	// kill -9: the page cache survives, the process does not.
	crashed := filepath.Join(t.TempDir(), "crashed")
	if err := copyDir(crashed, cfg.Dir); err != nil {
		t.Fatal(err)
	}
	b.Close()
	cfg.Dir = crashed
	b = mustOpen(t, cfg, Deps{GapRecord: gl.rec})
	defer b.Close()
	seq, _ := b.Append([]byte("after crash"))
	recs := readAll(t, b)
	gaps := accounted(t, recs)
	if want := fmt.Sprintf("gap 12-%d unused", seqReserve-1); len(gaps) != 1 || gaps[0] != want || seq != seqReserve+1 {
		t.Fatalf("after kill -9: gaps %q, seq %d; want [%s] and seq %d", gaps, seq, want, seqReserve+1)
	}
	if st := b.Stats(); st.Dropped != 0 || st.Lost["unused"] != seqReserve-12 {
		t.Fatalf("unused seqs counted as dropped: %+v", st)
	}
}

// TestCursorOfAnotherEpoch: acknowledgements saved under another epoch are
// not inherited: every record on disk goes out again.
func TestCursorOfAnotherEpoch(t *testing.T) {
	cfg := testConfig(t.TempDir())
	b := mustOpen(t, cfg)
	want := appendN(t, b, 20, 50)
	b.Ack(1, 2, 3)
	b.Close()
	other := testConfig(t.TempDir())
	b = mustOpen(t, other)
	b.Close()
	// The seq file of another buffer: another epoch.
	data, _ := os.ReadFile(filepath.Join(other.Dir, seqFile))
	os.WriteFile(filepath.Join(cfg.Dir, seqFile), data, 0o640)
	b = mustOpen(t, cfg)
	defer b.Close()
	checkRecords(t, readAll(t, b), want)
}

// TestDeletedDirectory: a buffer directory deleted under the running agent
// is made again and readings go on being kept; what it held is counted as
// lost (corrupt) and explained in band.
func TestDeletedDirectory(t *testing.T) {
	cfg := testConfig(t.TempDir())
	var gl gapLog
	b := mustOpen(t, cfg, Deps{GapRecord: gl.rec, statfsAlways: true})
	appendN(t, b, 10, 50)
	if err := os.RemoveAll(cfg.Dir); err != nil {
		t.Fatal(err)
	}
	want := appendN(t, b, 5, 50)
	fi, err := os.Stat(cfg.Dir)
	if err != nil || fi.Mode().Perm() != 0o750 {
		t.Fatalf("directory not made again with mode 0750: %v %v", fi, err)
	}
	st := b.Stats()
	if st.Lost["corrupt"] < 10 || st.Dropped != st.Lost["corrupt"] {
		t.Fatalf("records of the deleted directory not counted: %+v", st)
	}
	var onDisk int64
	for _, p := range segFiles(t, cfg.Dir) {
		onDisk += fileSize(t, p)
	}
	if st.Bytes != onDisk {
		t.Fatalf("Stats.Bytes %d, but the segments take %d", st.Bytes, onDisk)
	}
	recs := readAll(t, b)
	accounted(t, recs)
	b.Close()
	b = mustOpen(t, cfg)
	defer b.Close()
	got := readAll(t, b)
	for s, p := range want {
		found := false
		for _, r := range got {
			found = found || (r.Seq == s && bytes.Equal(r.Data, p))
		}
		if !found && s > uint64(st.Lost["corrupt"]) {
			t.Fatalf("reading %d appended after the deletion is lost after a restart", s)
		}
	}
	if _, err := Open(cfg, Deps{}); err == nil {
		t.Fatal("the recreated directory is not locked")
	}
}

// TestCraftedFrameLength: a frame header claiming a huge payload (a sparse
// or crafted segment) must not make recovery allocate more than a segment.
func TestCraftedFrameLength(t *testing.T) {
	cfg := testConfig(t.TempDir())
	path := filepath.Join(cfg.Dir, segName(1))
	os.MkdirAll(cfg.Dir, 0o750)
	var h [frameHeaderSize]byte
	binary.LittleEndian.PutUint32(h[0:], 512<<20)
	binary.LittleEndian.PutUint64(h[4:], 1)
	binary.LittleEndian.PutUint32(h[16:], crc32.Checksum(h[:16], castagnoli))
	data := append(encodeSegHeader(1), h[:]...)
	os.WriteFile(path, data, 0o640)
	os.Truncate(path, 600<<20) // sparse: costs no disk
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b := mustOpen(t, cfg)
	runtime.ReadMemStats(&after)
	defer b.Close()
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Fatalf("recovery allocated %d MiB for a crafted frame length", grew>>20)
	}
}

// TestZeroRunThenFrames: skipping zero runs fast must not skip a frame that
// starts right after (or overlapping the end of) a run of zeros.
func TestZeroRunThenFrames(t *testing.T) {
	for _, zeros := range []int{1, 11, 12, 13, 4095, scanWindow - 5, scanWindow + 7, 3 * scanWindow} {
		data := encodeSegHeader(1)
		data = appendFrame(data, 1, []byte("one"))
		data = append(data, make([]byte, zeros)...)
		data = appendFrame(data, 2, []byte("two"))
		data = appendFrame(data, 3, nil)
		sc := scanner{r: bytes.NewReader(data), off: segHeaderSize, end: int64(len(data)), min: 1, maxData: 1 << 20}
		var seqs []uint64
		for {
			f, _, ok := sc.next()
			if !ok {
				break
			}
			seqs = append(seqs, f.seq)
		}
		if fmt.Sprint(seqs) != "[1 2 3]" {
			t.Fatalf("%d zeros: frames %v, want [1 2 3]", zeros, seqs)
		}
	}
}

// TestDroppedRangesMerged: a long outage drops many small segments one
// after another; their ranges touch, so the bounded list keeps one range
// covering them all instead of only the latest ten segments.
func TestDroppedRangesMerged(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.MaxBytes = 2 * cfg.SegmentBytes
	b := mustOpen(t, cfg)
	defer b.Close()
	appendN(t, b, 2000, 100) // dozens of segments through a two-segment buffer
	st := b.Stats()
	if len(st.DroppedRanges) != 1 || st.DroppedRanges[0][0] != 1 || st.DroppedRanges[0][1]+1 != st.OldestSeq {
		t.Fatalf("dropped ranges %v, want one range from 1 to just below the oldest pending %d", st.DroppedRanges, st.OldestSeq)
	}
	if st.Dropped != int64(st.DroppedRanges[0][1]) || st.Lost["full"] != st.Dropped {
		t.Fatalf("dropped %d (by reason %v) for range %v", st.Dropped, st.Lost, st.DroppedRanges)
	}
}

// TestCursorVersion1Loads: a cursor written before epochs and reasons keeps
// its acknowledgements and its drop count after an upgrade.
func TestCursorVersion1Loads(t *testing.T) {
	cfg := testConfig(t.TempDir())
	b := mustOpen(t, cfg)
	want := appendN(t, b, 20, 50)
	b.Close()
	// The version 1 layout: dropped, dropped ranges, acked ranges.
	var p []byte
	p = binary.LittleEndian.AppendUint64(p, 7)
	p = binary.LittleEndian.AppendUint32(p, 1)
	p = binary.LittleEndian.AppendUint64(p, 100)
	p = binary.LittleEndian.AppendUint64(p, 106)
	p = binary.LittleEndian.AppendUint32(p, 1)
	p = binary.LittleEndian.AppendUint64(p, 1)
	p = binary.LittleEndian.AppendUint64(p, 5)
	slots := make([]byte, 2*slotSize)
	copy(slots[slotSize:], encodeSlot(cursorMagic, cursorSlotV1, 1, p))
	os.WriteFile(filepath.Join(cfg.Dir, cursorFile), slots, 0o640)
	b = mustOpen(t, cfg)
	defer b.Close()
	for s := uint64(1); s <= 5; s++ {
		delete(want, s)
	}
	checkRecords(t, readAll(t, b), want)
	if st := b.Stats(); st.Lost["full"] != 7 || st.DroppedRanges[0] != [2]uint64{100, 106} {
		t.Fatalf("version 1 drop count or ranges lost: %+v", st)
	}
}

// TestBrokenDiskFailingSince: when every write fails for a reason other than
// space (read-only, permissions, I/O), the buffer says since when, so the
// agent can stop being healthy; the readings are counted, and it recovers
// by itself once writes work again.
func TestBrokenDiskFailingSince(t *testing.T) {
	fsys := newFaultFS()
	cfg := testConfig(t.TempDir())
	b := mustOpen(t, cfg, Deps{FS: fsys})
	defer b.Close()
	appendN(t, b, 5, 50)
	fsys.kill() // every mutating step fails from now on
	if _, err := b.Append([]byte("lost")); err == nil {
		t.Fatal("Append on a broken disk succeeded")
	}
	if b.FailingSince().IsZero() {
		t.Fatal("FailingSince is zero while every write fails")
	}
	// Its seq was reserved already: it is counted, and explained in band
	// once writes work (as corrupt: the disk failed it).
	if st := b.Stats(); st.Lost["corrupt"] != 1 || st.Dropped != 1 || st.DroppedRanges[0] != [2]uint64{6, 6} {
		t.Fatalf("the refused reading is not counted: %+v", st)
	}
	fsys.mu.Lock()
	fsys.dead = false
	fsys.mu.Unlock()
	if _, err := b.Append([]byte("back")); err != nil {
		t.Fatalf("Append once the disk works again: %v", err)
	}
	if !b.FailingSince().IsZero() {
		t.Fatal("FailingSince still set after a write succeeded")
	}
}
