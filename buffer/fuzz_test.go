package buffer

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzRecover feeds arbitrary bytes as a segment file, as a cursor payload
// under a valid slot checksum, and as a raw cursor slot. Open must never
// fail or panic, must return only records whose frame (and so whose CRCs)
// is in the file, and must keep working: an append after recovery survives
// a reopen along with everything recovered.
func FuzzRecover(f *testing.F) {
	seg := encodeSegHeader(1)
	for s := uint64(1); s <= 4; s++ {
		seg = appendFrame(seg, s, bytes.Repeat([]byte{byte(s)}, int(s*7)))
	}
	cur := encodeCursor(&cursorState{lost: [numReasons]int64{ReasonFull: 1}, droppedRanges: []seqRange{{2, 2}}, acked: rangeSet{r: []seqRange{{2, 2}}}})
	f.Add(seg, cur, []byte{})
	f.Add(seg[:len(seg)-5], []byte{}, encodeSlot(cursorMagic, cursorSlotVersion, 2, cur))
	flipped := append([]byte(nil), seg...)
	flipped[segHeaderSize+frameHeaderSize+30] ^= 4
	f.Add(flipped, cur[:5], []byte("KCUR"))
	f.Add(append(append([]byte(nil), seg[:60]...), seg...), []byte{}, []byte{})
	f.Add([]byte{}, []byte{}, []byte{})
	f.Add(bytes.Repeat([]byte{0}, 100), []byte{}, bytes.Repeat([]byte{0xff}, 64))

	f.Fuzz(func(t *testing.T, segData, curPayload, rawSlot []byte) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, segName(1)), segData, 0o640)
		slots := make([]byte, 2*slotSize)
		copy(slots, rawSlot)
		if len(curPayload) <= slotMaxPayload {
			copy(slots[slotSize:], encodeSlot(cursorMagic, cursorSlotVersion, 1, curPayload))
		}
		os.WriteFile(filepath.Join(dir, cursorFile), slots, 0o640)

		cfg := testConfig(dir)
		b, err := Open(cfg, Deps{})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		recs := readAll(t, b)
		checkAscending(t, recs)
		for _, r := range recs {
			if !bytes.Contains(segData, appendFrame(nil, r.Seq, r.Data)) {
				t.Fatalf("record %d is not a valid frame of the input", r.Seq)
			}
		}
		_ = b.Stats()
		seq, err := b.Append([]byte("after"))
		if err != nil {
			t.Fatalf("Append after recovery: %v", err)
		}
		if len(recs) > 0 && seq <= recs[len(recs)-1].Seq {
			t.Fatalf("seq %d not after recovered %d", seq, recs[len(recs)-1].Seq)
		}
		if err := b.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		b, err = Open(cfg, Deps{})
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		defer b.Close()
		want := map[uint64][]byte{seq: []byte("after")}
		for _, r := range recs {
			want[r.Seq] = r.Data
		}
		checkRecords(t, readAll(t, b), want)
	})
}
