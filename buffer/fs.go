package buffer

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// FS is the file-system seam: every byte the buffer writes and every
// directory change goes through it, so tests can inject ENOSPC, count bytes
// and stop the world at a chosen step to simulate a crash. The zero-config
// default is the operating system (OSFS).
type FS interface {
	// OpenFile is os.OpenFile.
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	// Remove is os.Remove.
	Remove(name string) error
	// ReadDir is os.ReadDir.
	ReadDir(name string) ([]os.DirEntry, error)
	// MkdirAll is os.MkdirAll.
	MkdirAll(name string, perm os.FileMode) error
	// Stat is os.Stat; the buffer compares its directory's with
	// os.SameFile to notice it was deleted or replaced.
	Stat(name string) (os.FileInfo, error)
	// SyncDir fsyncs a directory, making creates and removes in it durable.
	SyncDir(name string) error
	// Statfs returns the bytes available to an unprivileged user on the
	// file system holding name.
	Statfs(name string) (avail int64, err error)
	// Lock takes an exclusive, non-blocking lock on the file name (created
	// if missing); it returns ErrLocked if someone else holds it. Closing
	// the returned Closer releases the lock.
	Lock(name string) (io.Closer, error)
}

// File is the part of *os.File the buffer uses.
type File interface {
	io.ReaderAt
	io.WriterAt
	Truncate(size int64) error
	Sync() error
	Stat() (os.FileInfo, error)
	Close() error
	Name() string
}

// OSFS is the FS of the running operating system.
type OSFS struct{}

var _ FS = OSFS{}

// OpenFile opens a file with os.OpenFile.
func (OSFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// Remove removes a file.
func (OSFS) Remove(name string) error { return os.Remove(name) }

// ReadDir lists a directory.
func (OSFS) ReadDir(name string) ([]os.DirEntry, error) { return os.ReadDir(name) }

// MkdirAll creates a directory and its parents.
func (OSFS) MkdirAll(name string, perm os.FileMode) error { return os.MkdirAll(name, perm) }

// Stat returns a file's information.
func (OSFS) Stat(name string) (os.FileInfo, error) { return os.Stat(name) }

// SyncDir fsyncs a directory.
func (OSFS) SyncDir(name string) error {
	d, err := os.Open(name)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync directory %s: %w", name, err)
	}
	return nil
}

// Statfs returns the bytes available to unprivileged users (f_bavail): root
// reserves the rest, and kitd should not eat into it even when run as root.
func (OSFS) Statfs(name string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(name, &st); err != nil {
		return 0, &os.PathError{Op: "statfs", Path: name, Err: err}
	}
	avail := uint64(st.Bavail) * uint64(st.Bsize) //nolint:unconvert // field types differ by GOARCH
	if avail > 1<<62 {
		avail = 1 << 62
	}
	return int64(avail), nil
}

// Lock takes a flock(2) on name. flock locks belong to the open file
// description, so they are released by the kernel when the process dies: a
// kill -9 never leaves a stale lock behind.
func (OSFS) Lock(name string) (io.Closer, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, ErrLocked
		}
		return nil, &os.PathError{Op: "flock", Path: name, Err: err}
	}
	return f, nil
}
