package buffer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"path/filepath"
	"strconv"
	"strings"
)

// Segment file format (little endian). See doc.go for the full picture.
//
// Header, segHeaderSize bytes:
//
//	0  magic    uint32 "KSEG"
//	4  version  uint32
//	8  firstSeq uint64 (also the file name)
//	16 crc      uint32 CRC32C of bytes 0..16
//	20 reserved uint32 zero
//
// Frame, frameHeaderSize bytes then the payload:
//
//	0  length   uint32 payload length
//	4  seq      uint64
//	12 dataCRC  uint32 CRC32C of the payload
//	16 hdrCRC   uint32 CRC32C of bytes 0..16
//	20 payload
//
// The header has its own checksum so that resynchronising after corruption
// can test each byte offset with a 16-byte CRC and read a payload only when
// the header holds.
const (
	segMagic        uint32 = 0x4b534547 // "KSEG"
	segVersion      uint32 = 1
	segHeaderSize          = 24
	frameHeaderSize        = 20
	segSuffix              = ".seg"

	// indexEvery is the spacing, in bytes, of the sparse per-segment index:
	// a reader seeks to the last entry at or before its seq and scans at
	// most this much.
	indexEvery = 64 << 10
)

func segName(first uint64) string { return fmt.Sprintf("%020d%s", first, segSuffix) }

// parseSegName returns the first seq encoded in a segment file name.
func parseSegName(name string) (uint64, bool) {
	s, ok := strings.CutSuffix(name, segSuffix)
	if !ok || len(s) != 20 {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v == 0 || v > maxSeq {
		return 0, false
	}
	return v, true
}

func encodeSegHeader(first uint64) []byte {
	b := make([]byte, segHeaderSize)
	binary.LittleEndian.PutUint32(b[0:], segMagic)
	binary.LittleEndian.PutUint32(b[4:], segVersion)
	binary.LittleEndian.PutUint64(b[8:], first)
	binary.LittleEndian.PutUint32(b[16:], crc32.Checksum(b[:16], castagnoli))
	return b
}

func checkSegHeader(b []byte, first uint64) error {
	if len(b) < segHeaderSize {
		return io.ErrUnexpectedEOF
	}
	if binary.LittleEndian.Uint32(b[0:]) != segMagic {
		return errBadMagic
	}
	if binary.LittleEndian.Uint32(b[16:]) != crc32.Checksum(b[:16], castagnoli) {
		return errBadChecksum
	}
	if binary.LittleEndian.Uint32(b[4:]) != segVersion {
		return errBadVersion
	}
	if got := binary.LittleEndian.Uint64(b[8:]); got != first {
		return fmt.Errorf("%w: header says first seq %d, name says %d", errBadPayload, got, first)
	}
	return nil
}

// appendFrame appends one framed record to b.
func appendFrame(b []byte, seq uint64, data []byte) []byte {
	var h [frameHeaderSize]byte
	binary.LittleEndian.PutUint32(h[0:], uint32(len(data)))
	binary.LittleEndian.PutUint64(h[4:], seq)
	binary.LittleEndian.PutUint32(h[12:], crc32.Checksum(data, castagnoli))
	binary.LittleEndian.PutUint32(h[16:], crc32.Checksum(h[:16], castagnoli))
	b = append(b, h[:]...)
	return append(b, data...)
}

// indexEntry says the frame of seq starts at off.
type indexEntry struct {
	seq uint64
	off int64
}

// segment is the in-memory view of one segment file. Fields are guarded by
// Buffer.mu; the file contents up to size are immutable once published.
type segment struct {
	first uint64 // from the file name
	// last is the seq of the last valid record, or first-1 if none.
	// Every seq in [first, last] is either a record in this file or in
	// the acked set (skipped by corruption, or a failed write's hole).
	last     uint64
	size     int64 // end of the last valid frame: readers never read past it
	fileSize int64 // bytes the file takes, garbage included (Stats.Bytes)
	path     string
	index    []indexEntry

	// rf is a read-only handle shared by readers (ReadAt is safe for
	// concurrent use); refs counts readers using it so that deleting the
	// segment closes it only when the last one is done.
	rf      File
	refs    int
	removed bool
}

func (s *segment) records() uint64 { return s.last + 1 - s.first }

// seek returns the offset of the last indexed frame at or before seq, and
// that frame's seq (the lowest seq a frame at that offset may have).
func (s *segment) seek(seq uint64) (int64, uint64) {
	off, min := int64(segHeaderSize), s.first
	lo, hi := 0, len(s.index)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s.index[m].seq <= seq {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo > 0 {
		e := s.index[lo-1]
		off, min = e.off, e.seq
	}
	return off, min
}

// addIndex records a frame position if it is indexEvery past the last one.
func (s *segment) addIndex(seq uint64, off int64) {
	lastOff := int64(segHeaderSize)
	if n := len(s.index); n > 0 {
		lastOff = s.index[n-1].off
	}
	if off-lastOff >= indexEvery {
		s.index = append(s.index, indexEntry{seq, off})
	}
}

func segPath(dir string, first uint64) string { return filepath.Join(dir, segName(first)) }

// frame is one valid record found by a scanner. data points into the
// scanner's window and is only valid until the next call.
type frame struct {
	seq  uint64
	off  int64
	size int64 // header + payload
	data []byte
}

// scanner reads valid frames from a segment between off and end. On bytes
// that do not form a valid frame it resynchronises by testing every later
// byte offset for a frame header whose CRC holds, a plausible length and
// seq, and a payload whose CRC holds. It never panics on any bytes.
type scanner struct {
	r   io.ReaderAt
	off int64  // next offset to look at
	end int64  // no frame may extend past it
	min uint64 // a valid frame's seq must be >= min; becomes seq+1
	// maxData bounds a payload length read from disk: segment_bytes, so
	// a crafted or sparse segment can never make the scanner allocate
	// more than a segment's worth.
	maxData int64

	buf    []byte
	bufOff int64
	err    error // read error other than EOF: scanning stops
}

const scanWindow = 64 << 10

// window returns the bytes [off, off+n), reading them if needed; nil if
// they cannot be read.
func (s *scanner) window(off int64, n int) []byte {
	if off >= s.bufOff && off+int64(n) <= s.bufOff+int64(len(s.buf)) {
		return s.buf[off-s.bufOff : off-s.bufOff+int64(n)]
	}
	want := int64(max(n, scanWindow))
	if rest := s.end - off; want > rest {
		want = rest
	}
	if want < int64(n) {
		return nil
	}
	if int64(cap(s.buf)) < want {
		s.buf = make([]byte, want)
	}
	s.buf = s.buf[:want]
	m, err := s.r.ReadAt(s.buf, off)
	if err != nil && !errors.Is(err, io.EOF) {
		s.err = err
		s.buf, s.bufOff = s.buf[:0], 0
		return nil
	}
	if int64(m) < want {
		// The file is shorter than we were told (ReadStats racing a
		// truncate): nothing past what exists can be a frame.
		s.end = off + int64(m)
	}
	s.buf, s.bufOff = s.buf[:m], off
	if m < n {
		return nil
	}
	return s.buf[:n]
}

// frameAt returns the frame at off if it is valid.
func (s *scanner) frameAt(off int64) (frame, bool) {
	h := s.window(off, frameHeaderSize)
	if h == nil {
		return frame{}, false
	}
	if crc32.Checksum(h[:16], castagnoli) != binary.LittleEndian.Uint32(h[16:]) {
		return frame{}, false
	}
	n := int64(binary.LittleEndian.Uint32(h[0:]))
	seq := binary.LittleEndian.Uint64(h[4:])
	dataCRC := binary.LittleEndian.Uint32(h[12:])
	if seq < s.min || seq == 0 || seq > maxSeq || n > s.maxData || n > s.end-off-frameHeaderSize {
		return frame{}, false
	}
	d := s.window(off+frameHeaderSize, int(n))
	if d == nil || crc32.Checksum(d, castagnoli) != dataCRC {
		return frame{}, false
	}
	return frame{seq: seq, off: off, size: frameHeaderSize + n, data: d}, true
}

// skipZeros returns the next offset after off worth testing for a frame.
// A frame's seq (bytes 4..12 of its header) is never zero, so in a run of
// zero bytes (a power loss on an SD card leaves whole blocks of them) no
// frame can start earlier than 11 bytes before the run's end: a zero-filled
// segment is crossed a window at a time, not one CRC per byte.
func (s *scanner) skipZeros(off int64) int64 {
	next := off + 1
	w := s.window(off, min(scanWindow, int(s.end-off)))
	if len(w) == 0 || w[0] != 0 {
		return next
	}
	run := int64(len(w))
	for i, c := range w {
		if c != 0 {
			run = int64(i)
			break
		}
	}
	return max(next, off+run-11)
}

// next returns the next valid frame. skipped is the number of bytes before
// it that were not part of a valid frame (corruption). At the end, ok is
// false and skipped counts the trailing bytes that form no frame.
func (s *scanner) next() (f frame, skipped int64, ok bool) {
	start := s.off
	for s.off < s.end && s.err == nil {
		if f, ok := s.frameAt(s.off); ok {
			s.off += f.size
			s.min = f.seq + 1
			return f, f.off - start, true
		}
		if s.err != nil {
			break
		}
		s.off = s.skipZeros(s.off)
	}
	skipped = s.off - start
	if s.err != nil {
		// Bytes we could not read count as skipped too.
		skipped = s.end - start
	}
	return frame{}, skipped, false
}
