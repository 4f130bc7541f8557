package buffer

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sort"
)

// File names inside the buffer directory.
const (
	cursorFile = "cursor"
	seqFile    = "seq"
	lockFile   = "LOCK"
)

// Magic numbers of the slot files.
const (
	cursorMagic uint32 = 0x4b435552 // "KCUR"
	seqMagic    uint32 = 0x4b534551 // "KSEQ"
)

// Bounds on the cursor payload. maxDroppedRanges is the contract ("the
// latest ten"). maxSavedAckRanges is what fits in a slot; when the acked
// set is more fragmented than that, the smallest ranges are left out of the
// saved cursor, which only costs duplicates after a restart.
const (
	maxDroppedRanges  = 10
	maxSavedAckRanges = (slotMaxPayload - 8 - 4 - maxDroppedRanges*16 - 4) / 16
)

// maxSeq bounds every seq read from disk, so that seq arithmetic (last+1,
// reserving ahead) can never overflow whatever bytes a file holds.
const maxSeq = uint64(1) << 62

// cursorState is what the cursor file persists.
//
// Payload layout (little endian):
//
//	dropped        int64
//	nDropped       uint32, then nDropped × (from uint64, to uint64)
//	nAcked         uint32, then nAcked × (lo uint64, hi uint64), ascending, disjoint
type cursorState struct {
	dropped       int64
	droppedRanges []seqRange // oldest first
	acked         rangeSet
}

func encodeCursor(c *cursorState) []byte {
	acked := c.acked.r
	if len(acked) > maxSavedAckRanges {
		acked = keepLargest(acked, maxSavedAckRanges)
	}
	b := make([]byte, 0, 16+16*(len(c.droppedRanges)+len(acked)))
	b = binary.LittleEndian.AppendUint64(b, uint64(c.dropped))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(c.droppedRanges)))
	for _, r := range c.droppedRanges {
		b = binary.LittleEndian.AppendUint64(b, r.lo)
		b = binary.LittleEndian.AppendUint64(b, r.hi)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(acked)))
	for _, r := range acked {
		b = binary.LittleEndian.AppendUint64(b, r.lo)
		b = binary.LittleEndian.AppendUint64(b, r.hi)
	}
	return b
}

// keepLargest returns the n largest ranges, in ascending order.
func keepLargest(r []seqRange, n int) []seqRange {
	c := append([]seqRange(nil), r...)
	sort.Slice(c, func(i, j int) bool { return c[i].len() > c[j].len() })
	c = c[:n]
	sort.Slice(c, func(i, j int) bool { return c[i].lo < c[j].lo })
	return c
}

// decodeCursor parses and validates a cursor payload; a payload whose
// checksum held but whose content is impossible is rejected like a bad
// checksum, so load falls back to the other slot.
func decodeCursor(p []byte) (*cursorState, error) {
	c := &cursorState{}
	rd := byteReader{b: p}
	d := rd.u64()
	if d > uint64(maxSeq) {
		return nil, fmt.Errorf("%w: dropped count %d", errBadPayload, d)
	}
	c.dropped = int64(d)
	nd := rd.u32()
	if nd > maxDroppedRanges {
		return nil, fmt.Errorf("%w: %d dropped ranges", errBadPayload, nd)
	}
	for i := uint32(0); i < nd && rd.ok(); i++ {
		r := seqRange{rd.u64(), rd.u64()}
		if r.lo == 0 || r.lo > r.hi || r.hi > maxSeq {
			return nil, fmt.Errorf("%w: dropped range [%d,%d]", errBadPayload, r.lo, r.hi)
		}
		c.droppedRanges = append(c.droppedRanges, r)
	}
	na := rd.u32()
	if na > maxSavedAckRanges {
		return nil, fmt.Errorf("%w: %d acked ranges", errBadPayload, na)
	}
	var prev uint64
	for i := uint32(0); i < na && rd.ok(); i++ {
		r := seqRange{rd.u64(), rd.u64()}
		// Strictly ascending with a gap, as rangeSet keeps them.
		if r.lo == 0 || r.lo > r.hi || r.hi > maxSeq || (i > 0 && r.lo <= prev+1) {
			return nil, fmt.Errorf("%w: acked range [%d,%d]", errBadPayload, r.lo, r.hi)
		}
		prev = r.hi
		c.acked.r = append(c.acked.r, r)
	}
	if !rd.ok() || len(rd.b) != 0 {
		return nil, fmt.Errorf("%w: length", errBadPayload)
	}
	return c, nil
}

// seqState is what the seq file persists: the epoch and the high-water mark.
// Every seq handed out is below hwm, and hwm is fsynced before a seq below it
// is handed out.
//
// Payload layout: epoch [8]byte, hwm uint64.
type seqState struct {
	epoch [8]byte
	hwm   uint64
}

func encodeSeq(s seqState) []byte {
	b := append([]byte(nil), s.epoch[:]...)
	return binary.LittleEndian.AppendUint64(b, s.hwm)
}

func decodeSeq(p []byte) (seqState, error) {
	var s seqState
	if len(p) != 16 {
		return s, fmt.Errorf("%w: length %d", errBadPayload, len(p))
	}
	copy(s.epoch[:], p)
	s.hwm = binary.LittleEndian.Uint64(p[8:])
	if s.hwm > maxSeq {
		return s, fmt.Errorf("%w: hwm %d", errBadPayload, s.hwm)
	}
	return s, nil
}

func newEpochID() ([8]byte, error) {
	var e [8]byte
	_, err := rand.Read(e[:])
	return e, err
}

func epochString(e [8]byte) string { return hex.EncodeToString(e[:]) }

// byteReader reads little-endian integers and remembers running short.
type byteReader struct {
	b     []byte
	short bool
}

func (r *byteReader) ok() bool { return !r.short }

func (r *byteReader) u64() uint64 {
	if len(r.b) < 8 {
		r.short, r.b = true, nil
		return 0
	}
	v := binary.LittleEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *byteReader) u32() uint32 {
	if len(r.b) < 4 {
		r.short, r.b = true, nil
		return 0
	}
	v := binary.LittleEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}
