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
// latest ten"). maxSavedAckRanges is what fits in a slot beside the rest;
// when the acked set is more fragmented than that, the smallest ranges are
// left out of the saved cursor, which only costs duplicates after a restart.
const (
	maxDroppedRanges  = 10
	cursorFixedBytes  = 8 + 8*int(numReasons) + 8 + 4 + 4 + 4
	maxSavedAckRanges = (slotMaxPayload - cursorFixedBytes - maxDroppedRanges*16 - maxPendingGaps*17) / 16
	// maxSavedAckRangesV1 is what a version 1 cursor could hold.
	maxSavedAckRangesV1 = (slotMaxPayload - 8 - 4 - maxDroppedRanges*16 - 4) / 16
)

// maxSeq bounds every seq read from disk, so that seq arithmetic (last+1,
// reserving ahead) can never overflow whatever bytes a file holds.
const maxSeq = uint64(1) << 62

// cursorState is what the cursor file persists.
//
// Payload layout, version 2 (little endian):
//
//	epoch          [8]byte  the epoch these acks belong to
//	lost           numReasons × int64, by Reason
//	refused        int64    appends refused without a seq
//	nDropped       uint32, then nDropped × (from uint64, to uint64)
//	nGaps          uint32, then nGaps × (from uint64, to uint64, reason uint8)
//	nAcked         uint32, then nAcked × (lo uint64, hi uint64), ascending, disjoint
//
// Version 1 (before epochs and reasons) was: dropped int64, the dropped
// ranges, the acked ranges; it loads as an unknown epoch with every drop
// counted as full.
type cursorState struct {
	epoch         [8]byte
	epochKnown    bool
	lost          [numReasons]int64
	refused       int64
	droppedRanges []seqRange // oldest first
	gaps          []Gap      // written in band once there is space
	acked         rangeSet
}

func encodeCursor(c *cursorState) []byte {
	acked := c.acked.r
	if len(acked) > maxSavedAckRanges {
		acked = keepLargest(acked, maxSavedAckRanges)
	}
	b := make([]byte, 0, cursorFixedBytes+16*len(c.droppedRanges)+17*len(c.gaps)+16*len(acked))
	b = append(b, c.epoch[:]...)
	for _, n := range c.lost {
		b = binary.LittleEndian.AppendUint64(b, uint64(n))
	}
	b = binary.LittleEndian.AppendUint64(b, uint64(c.refused))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(c.droppedRanges)))
	for _, r := range c.droppedRanges {
		b = binary.LittleEndian.AppendUint64(b, r.lo)
		b = binary.LittleEndian.AppendUint64(b, r.hi)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(c.gaps)))
	for _, g := range c.gaps {
		b = binary.LittleEndian.AppendUint64(b, g.From)
		b = binary.LittleEndian.AppendUint64(b, g.To)
		b = append(b, byte(g.Reason))
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

// decodeCursor parses and validates a cursor payload of the given slot
// version; a payload whose checksum held but whose content is impossible is
// rejected like a bad checksum, so load falls back to the other slot.
func decodeCursor(version uint32, p []byte) (*cursorState, error) {
	c := &cursorState{}
	rd := byteReader{b: p}
	count := func(what string) (int64, error) {
		v := rd.u64()
		if v > maxSeq {
			return 0, fmt.Errorf("%w: %s count %d", errBadPayload, what, v)
		}
		return int64(v), nil
	}
	var err error
	switch version {
	case cursorSlotV1:
		if c.lost[ReasonFull], err = count("dropped"); err != nil {
			return nil, err
		}
	case cursorSlotVersion:
		copy(c.epoch[:], rd.take(8))
		c.epochKnown = true
		for i := range c.lost {
			if c.lost[i], err = count(Reason(i).String()); err != nil {
				return nil, err
			}
		}
		if c.refused, err = count("refused"); err != nil {
			return nil, err
		}
	default:
		return nil, errBadVersion
	}
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
	if version == cursorSlotVersion {
		ng := rd.u32()
		if ng > maxPendingGaps {
			return nil, fmt.Errorf("%w: %d gaps", errBadPayload, ng)
		}
		for i := uint32(0); i < ng && rd.ok(); i++ {
			g := Gap{From: rd.u64(), To: rd.u64(), Reason: Reason(rd.u8())}
			if g.From == 0 || g.From > g.To || g.To > maxSeq || g.Reason >= numReasons {
				return nil, fmt.Errorf("%w: gap [%d,%d] reason %d", errBadPayload, g.From, g.To, g.Reason)
			}
			c.gaps = append(c.gaps, g)
		}
	}
	na := rd.u32()
	if limit := map[uint32]int{cursorSlotV1: maxSavedAckRangesV1, cursorSlotVersion: maxSavedAckRanges}[version]; int(na) > limit {
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

// highest returns the highest seq the cursor knows of (acked, dropped or a
// pending gap): the next seq must be above it, whatever the seq file says.
func (c *cursorState) highest() uint64 {
	var h uint64
	if n := len(c.acked.r); n > 0 {
		h = c.acked.r[n-1].hi
	}
	for _, r := range c.droppedRanges {
		h = max(h, r.hi)
	}
	for _, g := range c.gaps {
		h = max(h, g.To)
	}
	return h
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

func (r *byteReader) u8() uint8 {
	if len(r.b) < 1 {
		r.short, r.b = true, nil
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *byteReader) take(n int) []byte {
	if len(r.b) < n {
		r.short, r.b = true, nil
		return make([]byte, n)
	}
	v := r.b[:n]
	r.b = r.b[n:]
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
