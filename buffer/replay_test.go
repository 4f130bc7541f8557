package buffer

import (
	"bytes"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/internal/testkit"
)

// A ReplayReader returns acknowledged records as long as their segment is
// on disk, and nothing of deleted segments; reading changes nothing.
func TestReplayReader(t *testing.T) {
	b := mustOpen(t, testConfig(t.TempDir()))
	defer b.Close()
	want := appendN(t, b, 100, 512) // 4 KiB segments: 7 records each
	var acked []uint64
	for s := uint64(1); s <= 50; s++ {
		acked = append(acked, s)
	}
	if err := b.Ack(acked...); err != nil {
		t.Fatal(err)
	}
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	// The segments holding only acknowledged records go.
	testkit.WaitFor(t, 10*time.Second, "acknowledged segments deleted", func() bool {
		return len(segFiles(t, b.cfg.Dir)) <= 8
	})

	recs := drain(t, b.ReplayReader(1, 0))
	if len(recs) == 0 {
		t.Fatal("nothing replayed")
	}
	first := recs[0].Seq
	if first <= 1 || first > 50 {
		t.Fatalf("replay starts at %d: want an acknowledged seq still on disk, after the deleted ones", first)
	}
	for i, r := range recs {
		if r.Seq != first+uint64(i) || !bytes.Equal(r.Data, want[r.Seq]) {
			t.Fatalf("record %d: seq %d, data %q", i, r.Seq, r.Data)
		}
	}
	if last := recs[len(recs)-1].Seq; last != 100 {
		t.Fatalf("replay ends at %d", last)
	}
	// A bounded range, and the ordinary reader unaffected.
	part := drain(t, b.ReplayReader(first, first+3))
	if len(part) != 3 || part[0].Seq != first {
		t.Fatalf("bounded replay: %v", seqsOf(part))
	}
	if got := seqsOf(readAll(t, b)); len(got) != 50 || got[0] != 51 {
		t.Fatalf("reader after replay: %d records from %v", len(got), got[:min(len(got), 1)])
	}
	if st := b.Stats(); st.Pending != 50 {
		t.Fatalf("pending %d after replay", st.Pending)
	}
}

func drain(t *testing.T, r *Reader) []Record {
	t.Helper()
	var out []Record
	for {
		recs, err := r.Next(16, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			return out
		}
		for _, rc := range recs {
			out = append(out, Record{Seq: rc.Seq, Data: append([]byte(nil), rc.Data...)})
		}
	}
}
