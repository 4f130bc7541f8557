package buffer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
)

// A slot file holds one small record (the ack cursor, or the seq high-water
// mark) in two alternating fixed-size slots, like bbolt's two meta pages:
// a save overwrites the older slot in place and fsyncs, so a torn write
// leaves the other, older slot valid. Load picks the valid slot with the
// highest txid and falls back to the other.
//
// Slot layout (little endian), at offset (txid % 2) * slotSize:
//
//	0  magic   uint32
//	4  version uint32
//	8  txid    uint64
//	16 length  uint32  payload length
//	20 payload [length]byte
//	.. crc     uint32  CRC32C of bytes 0 .. 20+length
const (
	slotSize       = 4096
	slotHeaderSize = 20
	slotMaxPayload = slotSize - slotHeaderSize - 4
	// seqSlotVersion and cursorSlotVersion are the payload layouts each
	// file writes; load also takes cursorSlotV1, the layout before the
	// cursor carried its epoch and losses by reason.
	seqSlotVersion    = 1
	cursorSlotV1      = 1
	cursorSlotVersion = 2
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeSlot returns the bytes of a slot; payload must fit slotMaxPayload.
func encodeSlot(magic, version uint32, txid uint64, payload []byte) []byte {
	b := make([]byte, slotHeaderSize+len(payload)+4)
	binary.LittleEndian.PutUint32(b[0:], magic)
	binary.LittleEndian.PutUint32(b[4:], version)
	binary.LittleEndian.PutUint64(b[8:], txid)
	binary.LittleEndian.PutUint32(b[16:], uint32(len(payload)))
	copy(b[slotHeaderSize:], payload)
	n := slotHeaderSize + len(payload)
	binary.LittleEndian.PutUint32(b[n:], crc32.Checksum(b[:n], castagnoli))
	return b
}

// decodeSlot validates one slot's bytes (any length) and returns its txid,
// payload version and payload. Every failure maps to its own error, as
// bbolt's meta.Validate; the version is checked by the payload's decoder.
func decodeSlot(b []byte, magic uint32, index int) (txid uint64, version uint32, payload []byte, err error) {
	if len(b) < slotHeaderSize+4 {
		return 0, 0, nil, io.ErrUnexpectedEOF
	}
	if binary.LittleEndian.Uint32(b[0:]) != magic {
		return 0, 0, nil, errBadMagic
	}
	version = binary.LittleEndian.Uint32(b[4:])
	txid = binary.LittleEndian.Uint64(b[8:])
	n := binary.LittleEndian.Uint32(b[16:])
	if n > slotMaxPayload || int(n)+slotHeaderSize+4 > len(b) {
		return 0, 0, nil, errBadPayload
	}
	end := slotHeaderSize + int(n)
	if crc32.Checksum(b[:end], castagnoli) != binary.LittleEndian.Uint32(b[end:]) {
		return 0, 0, nil, errBadChecksum
	}
	// A slot copied to the wrong place is not trusted: txid decides where
	// a slot is written.
	if txid == 0 || int(txid%2) != index {
		return 0, 0, nil, errBadPayload
	}
	return txid, version, b[slotHeaderSize:end], nil
}

// pickSlot returns the payload of the valid slot with the highest txid for
// which valid(payload) holds, trying the other slot if it does not.
func pickSlot(data []byte, magic uint32, valid func(version uint32, payload []byte) error) (txid uint64, version uint32, payload []byte, err error) {
	type cand struct {
		txid    uint64
		version uint32
		payload []byte
	}
	var cands []cand
	var errs []error
	for i := 0; i < 2; i++ {
		lo := i * slotSize
		if lo >= len(data) {
			errs = append(errs, fmt.Errorf("slot %d: %w", i, io.ErrUnexpectedEOF))
			continue
		}
		t, v, p, err := decodeSlot(data[lo:min(len(data), lo+slotSize)], magic, i)
		if err == nil {
			err = valid(v, p)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("slot %d: %w", i, err))
			continue
		}
		cands = append(cands, cand{t, v, p})
	}
	if len(cands) == 0 {
		return 0, 0, nil, errors.Join(errs...)
	}
	best := cands[0]
	if len(cands) == 2 && cands[1].txid > best.txid {
		best = cands[1]
	}
	return best.txid, best.version, best.payload, nil
}

// slotFile is an open slot file.
type slotFile struct {
	f       File
	path    string
	magic   uint32
	version uint32 // of the payloads save writes
	txid    uint64 // txid of the last slot written or loaded
}

// readSlotFile loads the best slot of path without opening it for writing.
// A missing file returns an error wrapping fs.ErrNotExist.
func readSlotFile(fsys FS, path string, magic uint32, valid func(uint32, []byte) error) (uint64, uint32, []byte, error) {
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return 0, 0, nil, err
	}
	defer f.Close()
	data := make([]byte, 2*slotSize)
	n, err := f.ReadAt(data, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, 0, nil, fmt.Errorf("read %s: %w", path, err)
	}
	t, v, p, err := pickSlot(data[:n], magic, valid)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, v, p, nil
}

// openSlotFile opens (creating if missing) a slot file for saving. txid is
// the txid of the slot that load chose (0 if none was valid), so the next
// save overwrites the other slot.
func openSlotFile(fsys FS, path string, magic, version uint32, txid uint64) (sf *slotFile, created bool, err error) {
	f, err := fsys.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		f, err = fsys.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
		created = true
	}
	if err != nil {
		return nil, false, err
	}
	if created {
		// Allocate both slots now, so later saves overwrite in place and
		// need no free blocks: a cursor save must work on a full disk,
		// since dropping a segment saves the cursor first.
		if _, err := f.WriteAt(make([]byte, 2*slotSize), 0); err != nil {
			f.Close()
			return nil, true, fmt.Errorf("write %s: %w", path, err)
		}
	}
	return &slotFile{f: f, path: path, magic: magic, version: version, txid: txid}, created, nil
}

// save writes payload into the older slot and, if sync, fsyncs it. The
// slot is written whole and in place, so no space is allocated after the
// first two saves: saving works on a full file system.
func (s *slotFile) save(payload []byte, sync bool, fp func(string) error, name string) error {
	if len(payload) > slotMaxPayload {
		return fmt.Errorf("%s: payload of %d bytes exceeds a slot", s.path, len(payload))
	}
	txid := s.txid + 1
	b := encodeSlot(s.magic, s.version, txid, payload)
	if err := fp(name + "BeforeWrite"); err != nil {
		return err
	}
	if _, err := s.f.WriteAt(b, int64(txid%2)*slotSize); err != nil {
		return fmt.Errorf("write %s: %w", s.path, err)
	}
	if err := fp(name + "AfterWrite"); err != nil {
		return err
	}
	if sync {
		if err := s.f.Sync(); err != nil {
			return fmt.Errorf("fsync %s: %w", s.path, err)
		}
		if err := fp(name + "AfterSync"); err != nil {
			return err
		}
	}
	s.txid = txid
	return nil
}

func (s *slotFile) close() error { return s.f.Close() }
