package serial

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Opts are a port's settings.
type Opts struct {
	// Baud is the bit rate; 0 means 9600, the rate of every sensor kitd
	// reads. Only the standard rates 1200..115200 are accepted.
	Baud int
}

// DefaultOpts are used when Open is given nil.
var DefaultOpts = Opts{Baud: 9600}

var bauds = map[int]uint32{
	1200: unix.B1200, 2400: unix.B2400, 4800: unix.B4800, 9600: unix.B9600,
	19200: unix.B19200, 38400: unix.B38400, 57600: unix.B57600, 115200: unix.B115200,
}

// Port is an open serial port. It is used by one goroutine at a time.
type Port struct {
	f    *os.File
	path string
	// buf holds bytes read from the port and not yet consumed: a read
	// asks the kernel for as much as is there, a frame parser takes it a
	// byte at a time.
	buf  [256]byte
	r, w int
}

// Open opens path in raw mode, 8N1, no flow control, at opts.Baud.
func Open(path string, opts *Opts) (*Port, error) {
	if opts == nil {
		opts = &DefaultOpts
	}
	baud := opts.Baud
	if baud == 0 {
		baud = 9600
	}
	speed, ok := bauds[baud]
	if !ok {
		return nil, fmt.Errorf("serial: %s: unsupported baud rate %d", path, baud)
	}
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("serial: %w", explain(&os.PathError{Op: "open", Path: path, Err: err}))
	}
	if err := setRaw(fd, speed); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("serial: %s: %w", path, err)
	}
	// Exclusive use: a second opener (kitd sensors read while the agent
	// runs, a terminal program) would interleave its frames with ours.
	// The kernel refuses further opens with EBUSY, except to root.
	if err := unix.IoctlSetInt(fd, unix.TIOCEXCL, 0); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("serial: %s: exclusive use: %w", path, err)
	}
	// The fd is non-blocking, so os.NewFile registers it with the
	// runtime poller and read deadlines work.
	return &Port{f: os.NewFile(uintptr(fd), path), path: path}, nil
}

func setRaw(fd int, speed uint32) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		if errors.Is(err, unix.ENOTTY) {
			return errors.New("not a serial port (not a tty)")
		}
		return fmt.Errorf("get termios: %w", err)
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON | unix.IXOFF | unix.IXANY | unix.INPCK
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB | unix.CSTOPB | unix.CRTSCTS | unix.CBAUD
	t.Cflag |= unix.CS8 | unix.CREAD | unix.CLOCAL | speed
	t.Ispeed, t.Ospeed = speed, speed
	// The fd is non-blocking and reads wait in the poller, so VMIN and
	// VTIME only need to let a read return what is there.
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		return fmt.Errorf("set termios: %w", err)
	}
	return nil
}

// explain adds what to do to the open errors people meet.
func explain(err *os.PathError) error {
	switch {
	case errors.Is(err.Err, unix.ENOENT):
		return fmt.Errorf("%w (no such port: enable the UART, or check the USB adapter; kitd sensors scan lists the ports)", err)
	case errors.Is(err.Err, unix.EACCES):
		return fmt.Errorf("%w (add the service user to group dialout)", err)
	case errors.Is(err.Err, unix.EBUSY):
		return fmt.Errorf("%w (another program holds the port: the agent itself, a serial console or getty?)", err)
	}
	return err
}

// Path is the port's device path.
func (p *Port) Path() string { return p.path }

// Flush drops everything received and not yet read: a stale frame (a
// sensor's unsolicited report, the tail of an answer that came too late)
// must never answer the next request.
func (p *Port) Flush() error {
	p.r, p.w = 0, 0
	rc, err := p.f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = unix.IoctlSetInt(int(fd), unix.TCFLSH, unix.TCIFLUSH) }); err != nil {
		return err
	}
	if ferr != nil {
		return fmt.Errorf("serial: %s: flush: %w", p.path, ferr)
	}
	return nil
}

// Write writes b, by ctx's deadline.
func (p *Port) Write(ctx context.Context, b []byte) error {
	stop, err := p.bound(ctx, p.f.SetWriteDeadline)
	if err != nil {
		return err
	}
	defer stop()
	if _, err := p.f.Write(b); err != nil {
		return fmt.Errorf("serial: %s: write: %w", p.path, p.ctxErr(ctx, err))
	}
	return nil
}

// bound makes the file's deadline follow ctx: its deadline, and an
// immediate one when it is cancelled. stop undoes both.
func (p *Port) bound(ctx context.Context, set func(time.Time) error) (stop func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dl, _ := ctx.Deadline()
	if err := set(dl); err != nil {
		return nil, fmt.Errorf("serial: %s: %w", p.path, err)
	}
	unhook := context.AfterFunc(ctx, func() { set(time.Now()) })
	return func() { unhook(); set(time.Time{}) }, nil
}

// ctxErr turns the poller's deadline error into ctx's, which says whether
// the deadline passed or the caller gave up.
func (p *Port) ctxErr(ctx context.Context, err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		if err := ctx.Err(); err != nil {
			return err
		}
		// The file's timer can fire a moment before ctx's own.
		if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
			return context.DeadlineExceeded
		}
	}
	if errors.Is(err, syscall.EIO) || errors.Is(err, io.ErrUnexpectedEOF) {
		// What a USB adapter that was unplugged, or a pty whose other
		// end closed, reads.
		return fmt.Errorf("%w (port gone: adapter unplugged?)", err)
	}
	return err
}

// fill reads what the port has into buf, waiting by ctx for at least one
// byte. buf must have been consumed up to w.
func (p *Port) fill(ctx context.Context) error {
	if p.r == p.w {
		p.r, p.w = 0, 0
	}
	stop, err := p.bound(ctx, p.f.SetReadDeadline)
	if err != nil {
		return err
	}
	defer stop()
	n, err := p.f.Read(p.buf[p.w:])
	p.w += n
	if n > 0 {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return p.ctxErr(ctx, err)
}

// Next returns the next byte, waiting by ctx's deadline.
func (p *Port) Next(ctx context.Context) (byte, error) {
	if p.r == p.w {
		if err := p.fill(ctx); err != nil {
			return 0, err
		}
	}
	b := p.buf[p.r]
	p.r++
	return b, nil
}

// ReadFull fills b by ctx's deadline. A frame cut short is a
// *TruncatedError wrapping the reason (ctx's error, a closed port).
func (p *Port) ReadFull(ctx context.Context, b []byte) error {
	for i := range b {
		c, err := p.Next(ctx)
		if err != nil {
			return &TruncatedError{Got: i, Want: len(b), Err: err}
		}
		b[i] = c
	}
	return nil
}

// Sync reads up to and including the next occurrence of header and
// returns how many bytes it skipped before it: a frame is found by its
// header, so a partial frame or line noise ahead of it is passed over.
// It gives up after maxSkip bytes of garbage (a wrong baud rate reads as
// an endless stream of them) with a *GarbageError; when nothing at all
// arrived the error is a *TruncatedError with Got 0 ("no answer").
func (p *Port) Sync(ctx context.Context, header []byte, maxSkip int) (skipped int, err error) {
	matched := 0
	for {
		c, err := p.Next(ctx)
		if err != nil {
			if skipped+matched == 0 {
				return 0, &TruncatedError{Want: len(header), Err: err}
			}
			return skipped, &GarbageError{Skipped: skipped + matched, Err: err}
		}
		switch {
		case c == header[matched]:
			matched++
			if matched == len(header) {
				return skipped, nil
			}
			continue
		case matched > 0:
			// Headers here are short and do not overlap themselves
			// except by a repeated first byte (0xFF 0xFF 0x86).
			skipped += matched
			matched = 0
			if c == header[0] {
				matched = 1
				continue
			}
		}
		skipped++
		if skipped > maxSkip {
			return skipped, &GarbageError{Skipped: skipped}
		}
	}
}

// GarbageError is returned when bytes arrived but no frame header among
// them: a wrong baud rate, a different device on the port, or noise.
type GarbageError struct {
	Skipped int
	Err     error // why the search stopped, nil when maxSkip was reached
}

func (e *GarbageError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("no frame header in %d bytes of garbage (wrong device or baud rate?)", e.Skipped)
	}
	return fmt.Sprintf("no frame header in %d bytes of garbage, then %v", e.Skipped, e.Err)
}

func (e *GarbageError) Unwrap() error { return e.Err }

// Close gives up exclusive use and closes the port.
func (p *Port) Close() error {
	if rc, err := p.f.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) { unix.IoctlSetInt(int(fd), unix.TIOCNXCL, 0) })
	}
	return p.f.Close()
}

// TruncatedError is returned when fewer bytes than a frame's length
// arrived before the deadline or the port closed.
type TruncatedError struct {
	Got, Want int
	Err       error
}

func (e *TruncatedError) Error() string {
	if e.Got == 0 {
		return fmt.Sprintf("no answer (check power, the sensor's TX to the port's RX and its RX to the port's TX): %v", e.Err)
	}
	return fmt.Sprintf("truncated frame: %d of %d bytes, then %v", e.Got, e.Want, e.Err)
}

func (e *TruncatedError) Unwrap() error { return e.Err }
