package buffer

import "errors"

// Errors returned by Open.
var (
	// ErrLocked is returned when another process (or another Buffer in this
	// process) holds the lock file of the directory.
	ErrLocked = errors.New("buffer: directory is locked by another kitd")
)

// Errors returned by Append.
var (
	// ErrNoSpace is returned when a record cannot be written even after
	// dropping every older segment: the file system is full (ENOSPC) or its
	// free space is below min_free_bytes. The buffer stays usable; a later
	// Append succeeds once space is available.
	ErrNoSpace = errors.New("buffer: no space left")

	// ErrTooLarge is returned when a single payload does not fit in one
	// segment (segment_bytes minus the segment and frame headers).
	ErrTooLarge = errors.New("buffer: payload larger than a segment")
)

// Errors returned by ReadStats.
var (
	// ErrNoBuffer is returned when the directory does not exist: no agent
	// has opened a buffer there (Open creates it), or the config names
	// another directory than the agent's.
	ErrNoBuffer = errors.New("buffer: no buffer yet")
)

// Errors returned by any method after Close.
var (
	// ErrClosed is returned when the Buffer (or its Reader) is used after
	// Close.
	ErrClosed = errors.New("buffer: closed")
)

// Errors describing bad bytes on disk. Recovery never returns them from
// Open (bad bytes are skipped and reported as dropped); they name the reason
// in logs and in the validation of cursor and seq slots.
var (
	// errBadMagic is returned when a header does not start with the
	// expected magic number.
	errBadMagic = errors.New("bad magic")
	// errBadVersion is returned when a header carries a format version this
	// code does not read.
	errBadVersion = errors.New("unsupported format version")
	// errBadChecksum is returned when a header or slot checksum does not
	// hold.
	errBadChecksum = errors.New("checksum mismatch")
	// errBadPayload is returned when a slot's checksum holds but its
	// content is not a valid cursor or seq record (ranges out of order,
	// counts out of bounds).
	errBadPayload = errors.New("invalid slot payload")
)
