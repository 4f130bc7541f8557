// Package buffer is kitd's durable FIFO of encoded readings on disk: an
// append-only log of segment files, read from the oldest unacknowledged
// record, acknowledged in any order, bounded in bytes, and recovered after
// kill -9 or power loss at any byte without a panic or a halt.
//
// Payloads are opaque bytes; the buffer gives each a seq, strictly
// increasing, starting at 1, never handed out twice for one epoch.
//
// # Directory
//
//	LOCK                        flock(2)ed by the agent while open
//	seq                         epoch and seq high-water mark, two slots
//	cursor                      acked seq ranges and drop counters, two slots
//	00000000000000000001.seg    segments, named by their first seq (20 digits)
//	00000000000000004097.seg    ...
//
// # Segment files
//
// A segment starts with a 24-byte header: magic "KSEG" (uint32 LE
// 0x4b534547), version 1, the first seq (uint64), CRC32C (Castagnoli) of
// the preceding 16 bytes, 4 zero bytes. Frames follow back to back:
//
//	length  uint32   payload length
//	seq     uint64
//	dataCRC uint32   CRC32C of the payload
//	hdrCRC  uint32   CRC32C of the 16 bytes above
//	payload [length]byte
//
// All integers are little endian. Seqs within a segment are consecutive;
// between segments there may be gaps (seqs reserved by a process that then
// crashed). A segment is sealed once the next record would take it past
// segment_bytes (config key segment_bytes, default 4MiB, between 4KiB and
// 1GiB; it is also the largest payload accepted). A sealed segment is
// fsynced before the next one is created, under every sync policy, so only
// the last segment can end in a torn frame. Creating and deleting a segment
// is followed by an fsync of the directory. Segments are never rewritten:
// acks live in the cursor.
//
// # Slot files: cursor and seq
//
// Both hold one small record in two alternating 4096-byte slots, as bbolt
// keeps its two meta pages. A slot is: magic uint32 ("KCUR" or "KSEQ"),
// version uint32, txid uint64, payload length uint32, payload, CRC32C of
// everything before it. A save writes the slot txid%2 in place and fsyncs;
// load takes the valid slot (magic, version, checksum, txid matching its
// position, payload well formed) with the highest txid, and falls back to
// the other. Both slots are allocated when the file is created, so a save
// needs no free blocks.
//
// The cursor payload (slot version 2, see cursor.go) is the epoch it belongs
// to, the lost seqs counted by reason (full, corrupt, torn, discarded,
// unused) and the readings refused without a seq, up to ten dropped
// [from, to] seq ranges (adjacent ones merged), up to 32 gaps not yet
// written as gap records, and the acknowledged set as ascending disjoint
// [lo, hi] ranges (at most 206; when acks are more fragmented the smallest
// ranges are left out, which only costs duplicates). Version 1 cursors
// (no epoch, one drop count) still load. The acked set
// holds every seq that needs no delivery: acked, dropped, skipped as
// corrupt, or never written; it stays a contiguous prefix plus a few ranges
// of the live tail. The cursor is saved at most every sync_interval after
// an ack, on Sync and on Close, and always (fsynced) before a segment is
// deleted, so no seq is ever neither in a segment nor in the cursor.
//
// The seq payload is the 8-byte epoch and the high-water mark (hwm): every
// seq handed out is below hwm, and a new hwm (in blocks of 4096 seqs) is
// fsynced before any seq below it is handed out, under every sync policy.
// It is written to both slots in turn, so a slot damaged later falls back to
// the same mark, never an older one. A clean Close saves the exact next seq.
// On open, the next seq is the largest of hwm, the last seq on disk + 1, the
// highest segment name + 1 and the highest seq the cursor knows + 1: a crash
// leaves a gap (reported as unused, or torn after a cut tail), never a
// repeat. If the seq file is lost or unreadable, a new epoch is made (seqs
// go on above everything known); a cursor of another epoch gives it no
// acknowledgements, so every record on disk is delivered again, and the seqs
// of the new epoch with no record are reported as unused. The epoch is also
// new when the directory is created from nothing.
//
// # Guarantees
//
// Append returns once its records are written to the tail segment with one
// pwrite per group commit: concurrent Appends are merged into one write
// (and under "always" one fsync). What a crash loses:
//
//   - kill -9, any policy: nothing that Append returned for (the page
//     cache survives the process). Acks of the last sync_interval are
//     forgotten, so those records are delivered again.
//   - power loss, "always": nothing Append returned for.
//   - power loss, "interval": at most the records appended in the last
//     sync_interval of the tail segment (sealed segments are fsynced).
//   - power loss, "never": whatever the kernel had not written back of the
//     tail segment; sealed segments and the seq hwm are still fsynced.
//   - Sync and Close fsync the tail and save the cursor under any policy.
//
// Seqs never repeat within an epoch, across any of these.
//
// # Failure handling
//
// Recovery on Open scans every segment frame by frame. A torn tail (a
// short frame or bad CRC at the end of the last segment) is cut off with
// truncate; it is not counted as dropped, as it is the documented loss of
// the sync policy. Bytes that form no valid frame inside a segment are
// skipped by resynchronising: every later byte offset is tested for a frame
// whose header CRC, length, seq (above the previous one) and payload CRC all
// hold. The seqs between the last good frame and the next one are counted
// in Stats.Dropped and recorded in Stats.DroppedRanges, and added to the
// acked set so a later Open does not count them again. A frame whose seq
// goes backwards (within a segment or across segments) is skipped the same
// way; a segment file too short for its header (a crash during a roll) is
// removed; a bad segment header is logged and its frames are read anyway.
// Cursor and seq slots that fail validation fall back as above. Open fails
// only on I/O errors it cannot work around (permissions, a read-only file
// system, the lock), never because of the bytes it finds.
//
// Space: before each write, if the segments would exceed max_bytes, or the
// file system's available space (statfs, refreshed every 256KiB written or
// second) would fall below min_free_bytes, the oldest segments are dropped,
// down to the one being written: their unacknowledged records are counted
// and ranged in the cursor, the cursor is fsynced, then the files are
// unlinked and the directory fsynced. A write that fails with ENOSPC drops
// the oldest segment and is retried, whatever min_free_bytes says. Only
// when nothing is left to drop does Append return an error wrapping
// ErrNoSpace; the refused records still get seqs (if the seq file can be
// written) and a gap of reason full, so the loss is explained.
//
// Every loss is counted by Reason and, with Deps.GapRecord, written into the
// log itself as a gap record ahead of the next append (at once when idle),
// so a consumer can explain every missing seq from the stream alone. A gap
// record that is itself lost before delivery (its segment dropped while the
// disk stays full) hands its gap on to the next one. Only gap records
// written since Open are known: one left on disk by an earlier run and
// dropped undelivered takes its explanation with it.
//
// The directory is checked on the same cadence as the free space: deleted or
// replaced, it is made again (mode 0750, lock, seq and cursor files) and the
// records it held count as lost (corrupt). A run of failed writes for other
// reasons (read-only, permissions, I/O) is reported by FailingSince.
//
// Readers never return acked or dropped records. A Reader keeps its segment
// and file offset, and seeks through a sparse per-segment index (one entry
// per 64KiB), so a reader at the head of a long backlog reads only what is
// new. Segment deletion waits for readers that are reading the file.
//
// All file I/O goes through the FS interface, so tests inject ENOSPC, count
// bytes, and stop at any step (see the failpoint names in failpoints.go).
// No mmap, no cgo; 64-bit values are only touched under a mutex, which is
// safe on 32-bit ARM.
package buffer
