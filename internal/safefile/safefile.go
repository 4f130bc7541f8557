// Package safefile reads the small files kitd trusts (CA, certificate,
// private key, state files) without letting the file decide what the read
// costs: only a regular file is read (a FIFO would block `kitd config
// check` forever, /dev/zero would fill memory), never more than a bound,
// and files that configure trust are refused when others could change
// (or, for secrets, read) them.
package safefile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// Rules are what Read checks beyond the file being regular.
type Rules struct {
	// Max is the most bytes the file may hold; a larger file is an
	// error, and no more than Max+1 bytes are read to find out.
	Max int64
	// Trusted refuses a file its group or others may write: whoever can
	// write a CA file picks the server the kit trusts.
	Trusted bool
	// Secret refuses a file others (not its group) may read: a private
	// key or a password. Group-readable (0640, for the service's group) is
	// fine.
	Secret bool
}

// Errors wrapped by Read's errors.
var (
	// ErrNotRegular is returned when the path is a FIFO, device, socket
	// or directory.
	ErrNotRegular = errors.New("not a regular file")
	// ErrTooLarge is returned when the file holds more than Rules.Max.
	ErrTooLarge = errors.New("file too large")
)

// Read returns the file's content after checking it against r. Errors
// name the file and say how to fix it; they never quote the content.
func Read(path string, r Rules) ([]byte, error) {
	// O_NONBLOCK: opening a FIFO with no writer returns at once instead
	// of waiting for one, so the type check below gets to run. It changes
	// nothing for a regular file.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// The mode of the opened file, not of the path: nothing can swap the
	// file between the check and the read.
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := Check(path, st, r); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, r.Max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(b)) > r.Max {
		// It grew after the Stat.
		return nil, tooLarge(path, r.Max)
	}
	return b, nil
}

// Check applies r to a file's metadata; path is for the error.
func Check(path string, st fs.FileInfo, r Rules) error {
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is %s, %w", path, kind(st.Mode()), ErrNotRegular)
	}
	if st.Size() > r.Max {
		return tooLarge(path, r.Max)
	}
	m := st.Mode().Perm()
	if r.Secret && m&0o006 != 0 {
		what := "readable"
		if m&0o004 == 0 {
			what = "writable"
		}
		return fmt.Errorf("%s is %s by others (mode %04o): chmod 0640 it", path, what, m)
	}
	if r.Trusted && m&0o022 != 0 {
		return fmt.Errorf("%s is writable by its group or others (mode %04o), so another local user could replace it: chmod go-w it", path, m)
	}
	return nil
}

func tooLarge(path string, max int64) error {
	return fmt.Errorf("%s is larger than %d bytes, more than such a file ever holds (%w)", path, max, ErrTooLarge)
}

func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return "of type " + m.Type().String()
}
