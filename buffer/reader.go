package buffer

import (
	"fmt"
	"os"
	"sort"
)

// Reader iterates unacknowledged records with from <= seq < until in
// ascending seq order. It keeps its position (segment and file offset)
// between calls, so reading on costs only the new bytes, and it seeks with
// the per-segment sparse index, so starting near the head of a long backlog
// is cheap. A Reader must not be used by two goroutines at once; any number
// of Readers may run beside each other and beside Append and Ack.
type Reader struct {
	b     *Buffer
	next  uint64 // lowest seq to return next
	until uint64 // 0: no upper bound
	seg   *segment
	off   int64  // offset in seg of the frame to scan next
	min   uint64 // lowest seq the frame at off may carry
	arena []byte // Record.Data is carved from here by Next

	// replay: acknowledged records still on disk are returned too
	// (ReplayReader).
	replay bool

	// The scan window is kept between calls: a call usually returns a
	// fraction of it, and the next one goes on in the same bytes, which
	// are immutable once published (appends only write past seg.size).
	win    []byte
	winOff int64
	winSeg *segment
}

// Reader returns a Reader of the unacknowledged records with
// from <= seq < until; until 0 means no upper bound.
func (b *Buffer) Reader(from, until uint64) *Reader {
	return &Reader{b: b, next: max(from, 1), until: until}
}

// Seek moves the reader so that the next record returned is the first
// unacknowledged one with seq >= from.
func (r *Reader) Seek(from uint64) {
	r.next = max(from, 1)
	r.seg = nil
}

// readView is what a scan may use without holding the buffer's lock.
type readView struct {
	seg    *segment
	rf     File
	end    int64  // published bytes of seg
	last   uint64 // seg.last when end was taken
	sealed bool   // no more records will be appended to seg
	acked  []seqRange
}

// Next returns the records available now, possibly none; it never blocks
// waiting for appends (use Buffer.Notify). It returns at most maxRecords
// records whose Data add up to at most maxBytes, except that it returns at
// least one record if any is available; a limit <= 0 means no limit. Acked,
// dropped and corrupt records are never returned.
func (r *Reader) Next(maxRecords int, maxBytes int) ([]Record, error) {
	out, _, err := r.read(nil, nil, maxRecords, maxBytes)
	return out, err
}

// NextInto is Next with the memory in the caller's hands: it appends the
// records to recs and copies their Data into data's spare capacity
// (growing it if needed), and returns both. A caller that is done with
// every record of the previous call passes recs[:0] and data[:0] back in,
// and draining a backlog then allocates nothing per record.
func (r *Reader) NextInto(recs []Record, data []byte, maxRecords, maxBytes int) ([]Record, []byte, error) {
	if data == nil {
		data = []byte{} // carve into data, not into the arena
	}
	return r.read(recs, data, maxRecords, maxBytes)
}

// read appends records to out, carving their Data from data or, when data
// is nil, from the reader's own arena.
func (r *Reader) read(out []Record, data []byte, maxRecords, maxBytes int) ([]Record, []byte, error) {
	size := 0
	base := len(out)
	full := func(n int) bool {
		got := len(out) - base
		if maxRecords > 0 && got >= maxRecords {
			return true
		}
		return maxBytes > 0 && got > 0 && size+n > maxBytes
	}
	for {
		v, err := r.position()
		if err != nil || v == nil {
			return out, data, err
		}
		again := r.scan(v, &out, &data, &size, full)
		r.b.release(v.seg)
		if !again {
			return out, data, nil
		}
	}
}

// position finds the segment and offset for r.next and pins the segment's
// read handle; nil means nothing is available now.
func (r *Reader) position() (*readView, error) {
	b := r.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	if !r.replay {
		r.next = b.acked.nextMissing(r.next)
	}
	if r.until != 0 && r.next >= r.until {
		return nil, nil
	}
	seg := r.seg
	if seg == nil || seg.removed || r.next < seg.first || (r.next > seg.last && seg != b.tailSeg) {
		i := sort.Search(len(b.segs), func(i int) bool { return b.segs[i].last >= r.next })
		for i < len(b.segs) && b.segs[i].records() == 0 {
			i++
		}
		if i == len(b.segs) {
			r.seg = nil
			return nil, nil
		}
		seg = b.segs[i]
		r.seg = seg
		r.off, r.min = seg.seek(max(r.next, seg.first))
	} else if off, min := seg.seek(r.next); off > r.off {
		r.off, r.min = off, min
	}
	if r.next > seg.last {
		return nil, nil // the tail, and nothing new in it
	}
	if seg.rf == nil {
		f, err := b.fs.OpenFile(seg.path, os.O_RDONLY, 0)
		if err != nil {
			return nil, fmt.Errorf("buffer: %w", err)
		}
		seg.rf = f
	}
	seg.refs++
	v := &readView{seg: seg, rf: seg.rf, end: seg.size, last: seg.last, sealed: seg != b.tailSeg}
	for i := b.acked.search(r.next); !r.replay && i < len(b.acked.r) && b.acked.r[i].lo <= seg.last; i++ {
		v.acked = append(v.acked, b.acked.r[i])
	}
	return v, nil
}

// release unpins a segment's read handle, closing it if the segment is gone.
func (b *Buffer) release(s *segment) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s.refs--
	if s.refs == 0 && s.rf != nil && (s.removed || b.closed) {
		s.rf.Close()
		s.rf = nil
	}
}

// scan reads frames of one segment into out. It reports whether Next should
// position again (segment done, or a long acked run to seek over).
func (r *Reader) scan(v *readView, out *[]Record, data *[]byte, size *int, full func(int) bool) (again bool) {
	sc := scanner{r: v.rf, off: r.off, end: v.end, min: r.min, maxData: r.b.maxFrameData(), buf: r.win[:0]}
	if r.winSeg == v.seg {
		sc.buf, sc.bufOff = r.win, r.winOff
	}
	defer func() { r.win, r.winOff, r.winSeg = sc.buf, sc.bufOff, v.seg }()
	ai := 0
	for {
		expect := sc.min
		f, skipped, ok := sc.next()
		if !ok {
			// Everything published up to v.end was valid when written
			// or recovered; bytes that fail now rotted since.
			if skipped > 0 && v.sealed && sc.err == nil {
				r.b.noteLost(expect, v.last, v.seg.path)
			}
			if sc.err != nil {
				r.b.log.Error("read error", "file", v.seg.path, "err", sc.err)
			}
			r.off, r.min = sc.off, sc.min
			if v.sealed || sc.err != nil {
				r.next = max(r.next, v.last+1)
				return true
			}
			return false
		}
		if skipped > 0 && f.seq > expect {
			r.b.noteLost(expect, f.seq-1, v.seg.path)
		}
		if f.seq < r.next {
			r.off, r.min = sc.off, sc.min
			continue
		}
		if r.until != 0 && f.seq >= r.until {
			r.next = r.until
			return false
		}
		for ai < len(v.acked) && v.acked[ai].hi < f.seq {
			ai++
		}
		if ai < len(v.acked) && v.acked[ai].lo <= f.seq {
			r.off, r.min = sc.off, sc.min
			r.next = v.acked[ai].hi + 1
			if r.next-f.seq > 64 {
				return true // let position seek over the run with the index
			}
			continue
		}
		if full(len(f.data)) {
			return false // this frame stays next
		}
		*out = append(*out, Record{Seq: f.seq, Data: r.carve(data, f.data)})
		*size += len(f.data)
		r.off, r.min = sc.off, sc.min
		r.next = f.seq + 1
	}
}

// carve copies d into *data, or if data is nil into the reader's arena,
// so one Next allocates a few slabs rather than one slice per record.
func (r *Reader) carve(data *[]byte, d []byte) []byte {
	if data != nil && *data != nil {
		start := len(*data)
		*data = append(*data, d...)
		return (*data)[start:len(*data):len(*data)]
	}
	if len(r.arena)+len(d) > cap(r.arena) {
		r.arena = make([]byte, 0, max(len(d), 32<<10))
	}
	start := len(r.arena)
	r.arena = append(r.arena, d...)
	return r.arena[start:len(r.arena):len(r.arena)]
}

// noteLost counts seqs found unreadable at run time as dropped.
func (b *Buffer) noteLost(lo, hi uint64, path string) {
	b.mu.Lock()
	n := b.markLostLocked(lo, hi, ReasonCorrupt)
	b.mu.Unlock()
	if n > 0 {
		b.log.Warn("skipped corrupt records", "file", path, "records", n, "from", lo, "to", hi)
	}
	select {
	case b.ackc <- struct{}{}: // wake the loop to save the cursor
	default:
	}
}
