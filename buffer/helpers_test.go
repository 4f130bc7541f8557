package buffer

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/datasize"
)

// testConfig is a small buffer: 4KiB segments make rolls, drops and deletes
// happen within a few hundred records.
func testConfig(dir string) Config {
	cfg := DefaultConfig()
	cfg.Dir = dir
	cfg.SegmentBytes = 4 * datasize.KiB
	cfg.MaxBytes = 1 * datasize.MiB
	cfg.MinFreeBytes = 0
	cfg.SyncInterval = time.Hour // tests save the cursor with Sync, deterministically
	return cfg
}

// mustOpen opens cfg with deps (at most one; none: the zero Deps).
func mustOpen(t testing.TB, cfg Config, deps ...Deps) *Buffer {
	t.Helper()
	var d Deps
	if len(deps) > 0 {
		d = deps[0]
	}
	b, err := Open(cfg, d)
	if err != nil {
		t.Fatalf("Open(%s): %v", cfg.Dir, err)
	}
	return b
}

func payload(seq uint64, size int) []byte {
	p := []byte(fmt.Sprintf("reading-%08d|", seq))
	for len(p) < size {
		p = append(p, byte('a'+len(p)%26))
	}
	return p[:max(size, 0)]
}

// appendN appends n records of the given size one call each and returns
// their seqs mapped to payloads.
func appendN(t testing.TB, b *Buffer, n, size int) map[uint64][]byte {
	t.Helper()
	out := map[uint64][]byte{}
	for i := 0; i < n; i++ {
		p := payload(b.NextSeq(), size)
		seq, err := b.Append(p)
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
		out[seq] = p
	}
	return out
}

// readAll drains a fresh reader.
func readAll(t testing.TB, b *Buffer) []Record {
	t.Helper()
	var all []Record
	r := b.Reader(0, 0)
	for {
		recs, err := r.Next(100, 0)
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if len(recs) == 0 {
			return all
		}
		all = append(all, recs...)
	}
}

func seqsOf(recs []Record) []uint64 {
	s := make([]uint64, len(recs))
	for i, r := range recs {
		s[i] = r.Seq
	}
	return s
}

func checkAscending(t testing.TB, recs []Record) {
	t.Helper()
	for i := 1; i < len(recs); i++ {
		if recs[i].Seq <= recs[i-1].Seq {
			t.Fatalf("records out of order: %d after %d", recs[i].Seq, recs[i-1].Seq)
		}
	}
}

// checkRecords asserts recs are exactly want (seq -> payload).
func checkRecords(t testing.TB, recs []Record, want map[uint64][]byte) {
	t.Helper()
	checkAscending(t, recs)
	got := map[uint64]bool{}
	for _, r := range recs {
		w, ok := want[r.Seq]
		if !ok {
			t.Fatalf("unexpected record %d", r.Seq)
		}
		if !bytes.Equal(r.Data, w) {
			t.Fatalf("record %d: data %q, want %q", r.Seq, r.Data, w)
		}
		got[r.Seq] = true
	}
	if len(got) != len(want) {
		var missing []uint64
		for s := range want {
			if !got[s] {
				missing = append(missing, s)
			}
		}
		sort.Slice(missing, func(i, j int) bool { return missing[i] < missing[j] })
		t.Fatalf("%d records missing: %v", len(missing), missing[:min(len(missing), 20)])
	}
}

func segFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segSuffix))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(m)
	return m
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
