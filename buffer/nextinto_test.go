package buffer

import (
	"bytes"
	"testing"

	"github.com/kitd-dev/kitd/datasize"
)

// NextInto returns what Next returns, call for call, while its records and
// data are reused: across segment rolls, scattered acks, appends between
// calls, and limits by count and bytes.
func TestNextIntoMatchesNext(t *testing.T) {
	b := mustOpen(t, testConfig(t.TempDir())) // 4KiB segments
	defer b.Close()
	for i := range 300 {
		if _, err := b.Append(payload(b.NextSeq(), 20+i%90)); err != nil {
			t.Fatal(err)
		}
	}
	for s := uint64(3); s < 300; s += 7 {
		b.Ack(s)
	}
	b.Ack(100, 101, 102, 103, 104, 105)
	ref, into := b.Reader(2, 0), b.Reader(2, 0)
	var recs []Record
	var data []byte
	total := 0
	for call := 0; ; call++ {
		want, err := ref.Next(7, 300)
		if err != nil {
			t.Fatal(err)
		}
		recs, data, err = into.NextInto(recs[:0], data[:0], 7, 300)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != len(want) {
			t.Fatalf("call %d: NextInto %v, Next %v", call, seqsOf(recs), seqsOf(want))
		}
		for i := range want {
			if recs[i].Seq != want[i].Seq || !bytes.Equal(recs[i].Data, want[i].Data) {
				t.Fatalf("call %d record %d: NextInto %d %q, Next %d %q", call, i, recs[i].Seq, recs[i].Data, want[i].Seq, want[i].Data)
			}
		}
		total += len(recs)
		if call%5 == 0 && b.NextSeq() < 400 { // the tail grows under both readers
			if _, err := b.Append(payload(b.NextSeq(), 50), payload(b.NextSeq()+1, 60)); err != nil {
				t.Fatal(err)
			}
		}
		if len(recs) == 0 {
			break
		}
	}
	if want := int(b.Stats().Pending) - 1; total != want { // seq 1 is below from
		t.Fatalf("read %d records, %d pending from seq 2", total, want)
	}
}

// Records appended to a non-empty recs keep what was there, limits count
// only the new ones, and Data is carved from the caller's slice when it
// has room.
func TestNextIntoAppendsAndReuses(t *testing.T) {
	b := mustOpen(t, testConfig(t.TempDir()))
	defer b.Close()
	appendN(t, b, 20, 100)
	r := b.Reader(0, 0)
	recs := []Record{{Seq: 99, Data: []byte("kept")}}
	data := make([]byte, 0, 1000)
	recs, data, err := r.NextInto(recs, data, 5, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 6 || string(recs[0].Data) != "kept" || recs[1].Seq != 1 || recs[5].Seq != 5 {
		t.Fatalf("got %v", seqsOf(recs))
	}
	if &recs[1].Data[0] != &data[:1][0] || len(data) != 500 {
		t.Fatalf("data not carved from the caller's slice (len %d)", len(data))
	}
	// Data must be a full slice expression: appending to one record's
	// Data must not overwrite the next record's.
	if cap(recs[1].Data) != len(recs[1].Data) {
		t.Fatalf("record data has spare capacity %d", cap(recs[1].Data)-len(recs[1].Data))
	}
	recs, _, err = r.NextInto(recs[:0], data[:0], 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 15 || recs[0].Seq != 6 || !bytes.Equal(recs[14].Data, payload(20, 100)) {
		t.Fatalf("second call: %v", seqsOf(recs))
	}
}

// A reader going through a segment a few records at a time reads each
// byte about once: the scan window is kept between calls rather than read
// again from the reader's offset.
func TestReaderKeepsWindowBetweenCalls(t *testing.T) {
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
	for range 10 { // 1.2MB in one segment
		if _, err := b.Append(batch...); err != nil {
			t.Fatal(err)
		}
	}
	r := b.Reader(0, 0)
	before := fsys.read.Load()
	var recs []Record
	var data []byte
	n := 0
	for {
		var err error
		recs, data, err = r.NextInto(recs[:0], data[:0], 10, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			break
		}
		n += len(recs)
	}
	if n != 10_000 {
		t.Fatalf("read %d records", n)
	}
	size := fileSize(t, segFiles(t, cfg.Dir)[0])
	if read := fsys.read.Load() - before; read > size+2*scanWindow {
		t.Fatalf("reading a %d-byte segment 10 records at a time read %d bytes", size, read)
	}
}
