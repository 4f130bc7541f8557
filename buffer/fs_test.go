package buffer

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// errCrash is what the fault FS returns once the simulated process is dead.
var errCrash = errors.New("injected crash")

// faultFS wraps the OS file system to count bytes and fsyncs, inject ENOSPC,
// stop the world at the Nth mutating step (a crash: every later mutation
// fails, so nothing more reaches the disk), and simulate a power loss by
// rolling files back to what their last fsync covered.
type faultFS struct {
	OSFS

	mu        sync.Mutex
	dead      bool
	crashIn   int // >0: the crashIn-th mutating step from now crashes
	steps     int // mutating steps so far
	enospcSeg bool
	enospcNew bool
	// freedByRemove: removing a segment ends ENOSPC, as freeing blocks
	// on a real file system does.
	freedByRemove bool
	syncDelay     time.Duration
	durable       map[string]*durableState
	free          func() int64 // nil: the real statfs

	written   atomic.Int64 // bytes written to any file
	read      atomic.Int64 // bytes read from segment files
	segWrites atomic.Int64 // WriteAt calls on segment files
	segSyncs  atomic.Int64 // Sync calls on segment files
}

// durableState is what a power loss would leave of a file: its synced size,
// and for small files (slots) the synced content, since those are
// overwritten in place.
type durableState struct {
	size int64
	snap []byte
}

func newFaultFS() *faultFS { return &faultFS{durable: map[string]*durableState{}} }

// step accounts for one mutating operation and reports whether it may run.
func (f *faultFS) step() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dead {
		return errCrash
	}
	f.steps++
	if f.crashIn > 0 {
		f.crashIn--
		if f.crashIn == 0 {
			f.dead = true
			return errCrash
		}
	}
	return nil
}

func (f *faultFS) kill() {
	f.mu.Lock()
	f.dead = true
	f.mu.Unlock()
}

func (f *faultFS) isDead() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dead
}

func (f *faultFS) setENOSPC(seg, create bool) {
	f.mu.Lock()
	f.enospcSeg, f.enospcNew = seg, create
	f.mu.Unlock()
}

func (f *faultFS) remember(path string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.durable[path]; ok {
		return
	}
	st := &durableState{}
	if data, err := os.ReadFile(path); err == nil {
		st.size = int64(len(data))
		if len(data) <= 3*slotSize {
			st.snap = data
		}
	}
	f.durable[path] = st
}

func (f *faultFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	if flag&(os.O_RDWR|os.O_WRONLY) == 0 {
		file, err := f.OSFS.OpenFile(name, flag, perm)
		if err != nil {
			return nil, err
		}
		return &faultFile{File: file, fs: f, path: name}, nil
	}
	if err := f.step(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	enospc := f.enospcNew && flag&os.O_CREATE != 0 && strings.HasSuffix(name, segSuffix)
	f.mu.Unlock()
	if enospc {
		return nil, &os.PathError{Op: "open", Path: name, Err: syscall.ENOSPC}
	}
	f.remember(name)
	file, err := f.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f, path: name}, nil
}

func (f *faultFS) Remove(name string) error {
	if err := f.step(); err != nil {
		return err
	}
	f.mu.Lock()
	if f.freedByRemove && strings.HasSuffix(name, segSuffix) {
		f.enospcSeg, f.enospcNew = false, false
	}
	f.mu.Unlock()
	return f.OSFS.Remove(name)
}

func (f *faultFS) SyncDir(name string) error {
	if err := f.step(); err != nil {
		return err
	}
	return f.OSFS.SyncDir(name)
}

func (f *faultFS) MkdirAll(name string, perm os.FileMode) error {
	if err := f.step(); err != nil {
		return err
	}
	return f.OSFS.MkdirAll(name, perm)
}

func (f *faultFS) Statfs(name string) (int64, error) {
	f.mu.Lock()
	free := f.free
	f.mu.Unlock()
	if free != nil {
		return free(), nil
	}
	return f.OSFS.Statfs(name)
}

// powerLoss rolls every file written through f back to its last fsync.
// Directory operations are not rolled back (a simplification: creates and
// removes are fsynced by the buffer right after they happen).
func (f *faultFS) powerLoss() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for path, st := range f.durable {
		fi, err := os.Stat(path)
		if err != nil {
			continue
		}
		if st.snap != nil {
			os.WriteFile(path, st.snap, 0o640)
			continue
		}
		if fi.Size() > st.size {
			os.Truncate(path, st.size)
		}
	}
}

type faultFile struct {
	File
	fs   *faultFS
	path string
}

func (ff *faultFile) isSeg() bool { return strings.HasSuffix(ff.path, segSuffix) }

func (ff *faultFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := ff.File.ReadAt(p, off)
	if ff.isSeg() {
		ff.fs.read.Add(int64(n))
	}
	return n, err
}

func (ff *faultFile) WriteAt(p []byte, off int64) (int, error) {
	if err := ff.fs.step(); err != nil {
		return 0, err
	}
	if ff.isSeg() {
		ff.fs.segWrites.Add(1)
		ff.fs.mu.Lock()
		enospc := ff.fs.enospcSeg
		ff.fs.mu.Unlock()
		if enospc {
			// Like a real full disk: part of the write may land.
			n, _ := ff.File.WriteAt(p[:len(p)/2], off)
			ff.fs.written.Add(int64(n))
			return n, &os.PathError{Op: "write", Path: ff.path, Err: syscall.ENOSPC}
		}
	}
	n, err := ff.File.WriteAt(p, off)
	ff.fs.written.Add(int64(n))
	return n, err
}

func (ff *faultFile) Truncate(size int64) error {
	if err := ff.fs.step(); err != nil {
		return err
	}
	return ff.File.Truncate(size)
}

func (ff *faultFile) Sync() error {
	if err := ff.fs.step(); err != nil {
		return err
	}
	if ff.isSeg() {
		ff.fs.segSyncs.Add(1)
	}
	if d := ff.fs.syncDelay; d > 0 {
		time.Sleep(d)
	}
	if err := ff.File.Sync(); err != nil {
		return err
	}
	data, err := os.ReadFile(ff.path)
	if err != nil {
		return nil
	}
	st := &durableState{size: int64(len(data))}
	if len(data) <= 3*slotSize && !ff.isSeg() {
		st.snap = data
	}
	ff.fs.mu.Lock()
	ff.fs.durable[ff.path] = st
	ff.fs.mu.Unlock()
	return nil
}

// copyDir copies a buffer directory as a kill -9 would leave it: the page
// cache survives, so the copy holds every completed write.
func copyDir(dst, src string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dst, 0o750); err != nil {
		return err
	}
	for _, e := range entries {
		in, err := os.Open(filepath.Join(src, e.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		out, err := os.Create(filepath.Join(dst, e.Name()))
		if err != nil {
			in.Close()
			return err
		}
		_, err = io.Copy(out, in)
		in.Close()
		out.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
