package buffer

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// frameOffsets lists the offsets of the valid frames of a segment file.
func frameOffsets(t testing.TB, path string) []frame {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sc := scanner{r: bytes.NewReader(data), off: segHeaderSize, end: int64(len(data)), min: 1, maxData: int64(maxSegmentBytes)}
	var fs []frame
	for {
		f, _, ok := sc.next()
		if !ok {
			return fs
		}
		f.data = nil
		fs = append(fs, f)
	}
}

// TestTornTailEveryOffset cuts the last record at every byte (and, as a
// zero-filled extent after a power loss, zeroes it from every byte), reopens,
// appends, "crashes" again, and expects every earlier record and the new one.
func TestTornTailEveryOffset(t *testing.T) {
	src := testConfig(t.TempDir())
	src.Sync = SyncAlways
	b := mustOpen(t, src)
	want := appendN(t, b, 20, 90)
	b.Close()
	segs := segFiles(t, src.Dir)
	last := segs[len(segs)-1]
	frames := frameOffsets(t, last)
	lf := frames[len(frames)-1]
	delete(want, lf.seq)
	orig, _ := os.ReadFile(last)
	for _, mode := range []string{"truncate", "zero"} {
		for cut := lf.off; cut < lf.off+lf.size; cut++ {
			cfg := src
			cfg.Dir = filepath.Join(t.TempDir(), "b")
			if err := copyDir(cfg.Dir, src.Dir); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(cfg.Dir, filepath.Base(last))
			torn := append([]byte(nil), orig[:cut]...)
			if mode == "zero" {
				torn = append(torn, make([]byte, len(orig)-int(cut))...)
			}
			os.WriteFile(path, torn, 0o640)

			b := mustOpen(t, cfg)
			checkRecords(t, readAll(t, b), want)
			if got := fileSize(t, path); got != lf.off {
				t.Fatalf("%s at %d: torn tail not cut: size %d, want %d", mode, cut, got, lf.off)
			}
			// The torn record is explained as torn, never as corrupt; cut
			// exactly at its frame, nothing shows it was ever written,
			// and its seq reads as reserved but unused.
			st := b.Stats()
			if cut == lf.off && mode == "truncate" {
				if st.Lost["unused"] != 1 || st.Dropped != 0 {
					t.Fatalf("%s at %d: seq %d not reported as unused: %+v", mode, cut, lf.seq, st)
				}
			} else if st.Lost["torn"] != 1 || st.Dropped != 1 || st.DroppedRanges[0] != [2]uint64{lf.seq, lf.seq} {
				t.Fatalf("%s at %d: torn tail not reported as torn seq %d: %+v", mode, cut, lf.seq, st)
			}
			p := []byte(fmt.Sprintf("after-%d", cut))
			seq, err := b.Append(p)
			if err != nil {
				t.Fatal(err)
			}
			if seq <= lf.seq {
				t.Fatalf("seq %d reused after a torn tail (torn record was %d)", seq, lf.seq)
			}
			// Crash again (kill -9: the page cache survives).
			again := src
			again.Dir = filepath.Join(t.TempDir(), "c")
			copyDir(again.Dir, cfg.Dir)
			b.Close()
			b2 := mustOpen(t, again)
			w2 := map[uint64][]byte{seq: p}
			for k, v := range want {
				w2[k] = v
			}
			checkRecords(t, readAll(t, b2), w2)
			b2.Close()
		}
	}
}

// corruptAndReopen builds a buffer of 300 records over ~10 segments, lets
// damage change the bytes of its third segment file, and returns the records
// written and the reopened buffer.
func corruptAndReopen(t *testing.T, damage func(path string, frames []frame) (lost []uint64)) (*Buffer, map[uint64][]byte, []uint64) {
	t.Helper()
	cfg := testConfig(t.TempDir())
	b := mustOpen(t, cfg)
	want := appendN(t, b, 300, 100)
	b.Close()
	segs := segFiles(t, cfg.Dir)
	if len(segs) < 5 {
		t.Fatalf("only %d segments", len(segs))
	}
	lost := damage(segs[2], frameOffsets(t, segs[2]))
	for _, s := range lost {
		delete(want, s)
	}
	return mustOpen(t, cfg), want, lost
}

func flipBit(t *testing.T, path string, off int64, bit uint) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[off] ^= 1 << bit
	if err := os.WriteFile(path, data, 0o640); err != nil {
		t.Fatal(err)
	}
}

// TestBitFlip flips one bit in an older segment: only that record is lost,
// and reported; records before and after are delivered.
func TestBitFlip(t *testing.T) {
	cases := []struct {
		name   string
		where  func(f frame) int64
		record int // index of the frame in the segment; -1 the last
		lost   bool
	}{
		{"payload", func(f frame) int64 { return f.off + frameHeaderSize + 7 }, 10, true},
		{"length", func(f frame) int64 { return f.off + 1 }, 10, true},
		{"seq", func(f frame) int64 { return f.off + 4 }, 10, true},
		{"header crc", func(f frame) int64 { return f.off + 17 }, 10, true},
		{"first frame", func(f frame) int64 { return f.off + 30 }, 0, true},
		{"last frame of a sealed segment", func(f frame) int64 { return f.off + 40 }, -1, true},
		{"segment header", func(f frame) int64 { return 9 }, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, bit := range []uint{0, 7} {
				b, want, lost := corruptAndReopen(t, func(path string, frames []frame) []uint64 {
					i := tc.record
					if i < 0 {
						i = len(frames) - 1
					}
					flipBit(t, path, tc.where(frames[i]), bit)
					if !tc.lost {
						return nil
					}
					return []uint64{frames[i].seq}
				})
				checkRecords(t, readAll(t, b), want)
				st := b.Stats()
				var wantRanges [][2]uint64
				for _, s := range lost {
					wantRanges = append(wantRanges, [2]uint64{s, s})
				}
				if st.Dropped != int64(len(lost)) || fmt.Sprint(st.DroppedRanges) != fmt.Sprint(wantRanges) {
					t.Fatalf("bit %d: dropped %d %v, want %d %v", bit, st.Dropped, st.DroppedRanges, len(lost), wantRanges)
				}
				b.Close()
				// Reopening does not count the same damage again.
				b = mustOpen(t, b.cfg)
				if st2 := b.Stats(); st2.Dropped != st.Dropped {
					t.Fatalf("reopen counted again: %d -> %d", st.Dropped, st2.Dropped)
				}
				checkRecords(t, readAll(t, b), want)
				b.Close()
			}
		})
	}
}

// TestCorruptRun wipes several records in the middle of a segment with
// garbage: the run is skipped by resynchronising, reported as one range.
func TestCorruptRun(t *testing.T) {
	b, want, lost := corruptAndReopen(t, func(path string, frames []frame) []uint64 {
		data, _ := os.ReadFile(path)
		rng := rand.New(rand.NewSource(1))
		from, to := frames[5].off+3, frames[9].off+10
		rng.Read(data[from:to])
		os.WriteFile(path, data, 0o640)
		var lost []uint64
		for _, f := range frames[5:10] {
			lost = append(lost, f.seq)
		}
		return lost
	})
	defer b.Close()
	checkRecords(t, readAll(t, b), want)
	st := b.Stats()
	if st.Dropped != 5 || len(st.DroppedRanges) != 1 || st.DroppedRanges[0] != [2]uint64{lost[0], lost[4]} {
		t.Fatalf("stats %+v, lost %v", st, lost)
	}
}

// TestSeqBackwardsAndGarbage hand-builds segments with a seq going backwards,
// a duplicate segment, garbage between frames and junk files.
func TestSeqBackwardsAndGarbage(t *testing.T) {
	dir := t.TempDir()
	seg := func(first uint64, parts ...[]byte) {
		data := encodeSegHeader(first)
		for _, p := range parts {
			data = append(data, p...)
		}
		os.WriteFile(filepath.Join(dir, segName(first)), data, 0o640)
	}
	fr := func(seq uint64) []byte { return appendFrame(nil, seq, []byte(fmt.Sprint("r", seq))) }
	seg(1, fr(1), fr(2), fr(3), fr(2), []byte("garbage!"), fr(4), fr(5))
	seg(3, fr(3), fr(4), fr(6), fr(7)) // overlaps the first: 3 and 4 are not new
	os.WriteFile(filepath.Join(dir, "00000000000000000abc.seg"), []byte("junk"), 0o640)
	os.WriteFile(filepath.Join(dir, segName(100)), []byte("KSEG"), 0o640) // a roll cut short
	cfg := testConfig(dir)
	b := mustOpen(t, cfg)
	defer b.Close()
	recs := readAll(t, b)
	if got := fmt.Sprint(seqsOf(recs)); got != "[1 2 3 4 5 6 7]" {
		t.Fatalf("records %s", got)
	}
	if b.NextSeq() <= 100 {
		t.Fatalf("next seq %d does not pass the highest segment name", b.NextSeq())
	}
	if _, err := os.Stat(filepath.Join(dir, segName(100))); err == nil {
		t.Fatal("headerless segment not removed")
	}
	if st := b.Stats(); st.Dropped != 0 {
		t.Fatalf("dropped %d; nothing was lost", st.Dropped)
	}
}

// TestCursorSlotFallback: a torn or corrupt newest cursor slot falls back to
// the older one; both bad means everything is delivered again.
func TestCursorSlotFallback(t *testing.T) {
	cfg := testConfig(t.TempDir())
	b := mustOpen(t, cfg)
	appendN(t, b, 50, 50)
	b.Ack(1, 2, 3)
	b.Sync()
	b.Ack(4, 5)
	b.Close() // saves the other slot
	path := filepath.Join(cfg.Dir, cursorFile)
	txid, _, _, err := readSlotFile(OSFS{}, path, cursorMagic, func(uint32, []byte) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	flipBit(t, path, int64(txid%2)*slotSize+slotHeaderSize+3, 1)
	b = mustOpen(t, cfg)
	if recs := readAll(t, b); recs[0].Seq != 4 {
		t.Fatalf("after a corrupt newest slot: first record %d, want 4", recs[0].Seq)
	}
	b.Close()
	os.WriteFile(path, bytes.Repeat([]byte{0xff}, 2*slotSize), 0o640)
	b = mustOpen(t, cfg)
	defer b.Close()
	if recs := readAll(t, b); len(recs) != 50 {
		t.Fatalf("with no valid cursor: %d records, want all 50", len(recs))
	}
}

// crashModel is what the workload knows the buffer accepted and acked.
type crashModel struct {
	accepted   map[uint64][]byte
	synced     map[uint64]bool // accepted before a successful Sync
	acked      map[uint64]bool
	durAcked   map[uint64]bool // acked before a successful Sync
	maxHanded  uint64
	crashFirst uint64 // NextSeq before the Append that failed
}

// crashWorkload appends, acks scattered subsets, and syncs, until the file
// system dies or 60 rounds pass. It drives rolls, deletes, drops (max_bytes
// is small) and cursor saves.
func crashWorkload(b *Buffer, m *crashModel, seed int64) error {
	rng := rand.New(rand.NewSource(seed))
	for round := 0; round < 60; round++ {
		n := 1 + rng.Intn(6)
		next := b.NextSeq()
		ps := make([][]byte, n)
		for i := range ps {
			ps[i] = payload(next+uint64(i), 40+rng.Intn(200))
		}
		first, err := b.Append(ps...)
		if err != nil {
			m.crashFirst = next
			return err
		}
		for i, p := range ps {
			m.accepted[first+uint64(i)] = p
		}
		m.maxHanded = first + uint64(n) - 1
		if rng.Intn(3) == 0 {
			var acks []uint64
			for s := range m.accepted {
				if !m.acked[s] && rng.Intn(2) == 0 {
					acks = append(acks, s)
					m.acked[s] = true
				}
			}
			b.Ack(acks...)
		}
		if rng.Intn(6) == 0 {
			if err := b.Sync(); err != nil {
				return err
			}
			for s := range m.accepted {
				m.synced[s] = true
			}
			for s := range m.acked {
				m.durAcked[s] = true
			}
		}
	}
	return nil
}

// checkAfterCrash reopens dir as a new process would and checks: no panic,
// no seq handed out again, no unacked accepted record lost unless counted as
// dropped, no record acked before the last cursor save delivered again, and
// appends after recovery survive a reopen.
func checkAfterCrash(t *testing.T, cfg Config, m *crashModel, powerLoss bool, what string) {
	t.Helper()
	b, err := Open(cfg, Deps{})
	if err != nil {
		t.Fatalf("%s: reopen: %v", what, err)
	}
	if b.NextSeq() <= m.maxHanded {
		t.Fatalf("%s: next seq %d, but %d was handed out", what, b.NextSeq(), m.maxHanded)
	}
	got := map[uint64]bool{}
	for _, r := range readAll(t, b) {
		got[r.Seq] = true
		if m.durAcked[r.Seq] {
			t.Fatalf("%s: record %d delivered again although acked before the last cursor save", what, r.Seq)
		}
		if p, ok := m.accepted[r.Seq]; ok {
			if !bytes.Equal(p, r.Data) {
				t.Fatalf("%s: record %d has wrong data", what, r.Seq)
			}
		} else if m.crashFirst == 0 || r.Seq < m.crashFirst {
			t.Fatalf("%s: record %d was never appended", what, r.Seq)
		}
	}
	missing := 0
	for s := range m.accepted {
		mustHave := !m.acked[s] && (!powerLoss || cfg.Sync == SyncAlways || m.synced[s])
		if mustHave && !got[s] {
			missing++
		}
	}
	st := b.Stats()
	if int64(missing) > st.Dropped {
		t.Fatalf("%s: %d unacked records lost, only %d counted as dropped", what, missing, st.Dropped)
	}
	seq, err := b.Append([]byte("after"))
	if err != nil {
		t.Fatalf("%s: append after recovery: %v", what, err)
	}
	if seq <= m.maxHanded {
		t.Fatalf("%s: seq %d repeated", what, seq)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("%s: close: %v", what, err)
	}
	b = mustOpen(t, cfg)
	defer b.Close()
	found := false
	for _, r := range readAll(t, b) {
		found = found || (r.Seq == seq && string(r.Data) == "after")
	}
	if !found {
		t.Fatalf("%s: record appended after recovery lost", what)
	}
}

// allFailpoints lists every failpoint name.
var allFailpoints = []string{
	fpAppendAfterWrite, fpAppendAfterSync,
	fpRollAfterSyncPrev, fpRollAfterCreate, fpRollAfterHeader, fpRollAfterSync, fpRollAfterDirSync,
	fpDeleteBeforeRemove, fpDeleteAfterRemove, fpDeleteAfterDirSync,
	fpCursorSave + "BeforeWrite", fpCursorSave + "AfterWrite", fpCursorSave + "AfterSync",
	fpSeqReserve + "BeforeWrite", fpSeqReserve + "AfterWrite", fpSeqReserve + "AfterSync",
}

type crashRun struct {
	policy    SyncPolicy
	powerLoss bool
}

var crashRuns = []crashRun{{SyncInterval, false}, {SyncNever, false}, {SyncAlways, true}, {SyncInterval, true}}

func crashConfig(dir string, policy SyncPolicy) Config {
	cfg := testConfig(dir)
	cfg.MaxBytes = 3 * cfg.SegmentBytes
	cfg.Sync = policy
	return cfg
}

func newModel() *crashModel {
	return &crashModel{accepted: map[uint64][]byte{}, synced: map[uint64]bool{},
		acked: map[uint64]bool{}, durAcked: map[uint64]bool{}}
}

// TestCrashAtEveryStep stops the file system at its Nth mutating step (open
// for write, write, truncate, fsync, remove, directory fsync), for every N
// until the workload finishes, then reopens: this covers a crash between
// every pair of steps of roll, delete, cursor save and seq reservation.
func TestCrashAtEveryStep(t *testing.T) {
	for _, run := range crashRuns {
		t.Run(fmt.Sprintf("%s/powerloss=%v", run.policy, run.powerLoss), func(t *testing.T) {
			stride := 1
			if testing.Short() {
				stride = 7
			}
			for n := 1; ; n += stride {
				fsys := newFaultFS()
				fsys.crashIn = n
				cfg := crashConfig(t.TempDir(), run.policy)
				m := newModel()
				b, err := Open(cfg, Deps{FS: fsys})
				if err != nil {
					if fsys.isDead() {
						// Crashed while creating the buffer.
						checkAfterCrash(t, cfg, m, run.powerLoss, fmt.Sprintf("step %d (open)", n))
						continue
					}
					t.Fatal(err)
				}
				werr := crashWorkload(b, m, int64(n))
				b.Close()
				if !fsys.isDead() {
					if werr != nil {
						t.Fatal(werr)
					}
					t.Logf("%d crash points", n)
					return
				}
				if run.powerLoss {
					fsys.powerLoss()
				}
				checkAfterCrash(t, cfg, m, run.powerLoss, fmt.Sprintf("step %d", n))
			}
		})
	}
}

// TestCrashAtFailpoints stops at each named failpoint (the first three hits
// of each), so every step of roll, delete and cursor save is covered by name.
func TestCrashAtFailpoints(t *testing.T) {
	for _, run := range crashRuns {
		for _, name := range allFailpoints {
			t.Run(fmt.Sprintf("%s/powerloss=%v/%s", run.policy, run.powerLoss, name), func(t *testing.T) {
				for hit := 1; hit <= 3; hit++ {
					fsys := newFaultFS()
					var mu sync.Mutex
					hits := 0
					hook := func(fp string) error {
						if fp != name {
							return nil
						}
						mu.Lock()
						defer mu.Unlock()
						hits++
						if hits == hit {
							fsys.kill()
							return fmt.Errorf("%w at %s", errCrash, fp)
						}
						return nil
					}
					cfg := crashConfig(t.TempDir(), run.policy)
					m := newModel()
					b, err := Open(cfg, Deps{FS: fsys, failpoint: hook})
					if err == nil {
						crashWorkload(b, m, int64(hit))
						b.Close()
					}
					if !fsys.isDead() {
						if hit == 1 && name != fpAppendAfterSync {
							t.Fatalf("failpoint %s never reached", name)
						}
						return
					}
					if run.powerLoss {
						fsys.powerLoss()
					}
					checkAfterCrash(t, cfg, m, run.powerLoss, fmt.Sprintf("%s hit %d", name, hit))
				}
			})
		}
	}
}
