package safefile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const pemMax = 1 << 20

func write(t *testing.T, name string, data []byte, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	// Chmod after the write: the umask must not decide the mode.
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// readSoon fails instead of hanging when Read blocks (a FIFO opened
// without O_NONBLOCK waits for a writer forever).
func readSoon(t *testing.T, path string, r Rules) ([]byte, error) {
	t.Helper()
	type result struct {
		b   []byte
		err error
	}
	ch := make(chan result, 1)
	go func() {
		b, err := Read(path, r)
		ch <- result{b, err}
	}()
	select {
	case res := <-ch:
		return res.b, res.err
	case <-time.After(time.Minute):
		t.Fatalf("Read(%s) still blocked after a minute", path)
		return nil, nil
	}
}

func TestReadRegularFile(t *testing.T) {
	p := write(t, "ca.pem", []byte("-----BEGIN CERTIFICATE-----\n"), 0o644)
	b, err := readSoon(t, p, Rules{Max: pemMax, Trusted: true})
	if err != nil || string(b) != "-----BEGIN CERTIFICATE-----\n" {
		t.Fatalf("%q, %v", b, err)
	}
	// Exactly Max bytes is fine; one more is not.
	p = write(t, "exact", make([]byte, 100), 0o644)
	if b, err := readSoon(t, p, Rules{Max: 100}); err != nil || len(b) != 100 {
		t.Fatalf("100 bytes with Max 100: %d, %v", len(b), err)
	}
	p = write(t, "over", make([]byte, 101), 0o644)
	if _, err := readSoon(t, p, Rules{Max: 100}); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), p+" is larger than 100 bytes") {
		t.Fatalf("101 bytes with Max 100: %v", err)
	}
}

func TestReadRefusesWhatIsNotARegularFile(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "ca.pem")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, c := range []struct{ path, want string }{
		{fifo, fifo + " is a named pipe (FIFO), not a regular file"},
		{"/dev/zero", "/dev/zero is a character device, not a regular file"},
		{"/dev/null", "/dev/null is a character device, not a regular file"},
		{dir, dir + " is a directory, not a regular file"},
	} {
		b, err := readSoon(t, c.path, Rules{Max: pemMax, Trusted: true})
		if !errors.Is(err, ErrNotRegular) || err.Error() != c.want {
			t.Errorf("%s: %q, %v; want %q", c.path, b, err, c.want)
		}
	}
	// A symlink is followed: what counts is the file it names.
	link := filepath.Join(t.TempDir(), "zero.pem")
	if err := os.Symlink("/dev/zero", link); err != nil {
		t.Fatal(err)
	}
	if _, err := readSoon(t, link, Rules{Max: pemMax}); !errors.Is(err, ErrNotRegular) {
		t.Errorf("symlink to /dev/zero: %v", err)
	}
	if _, err := readSoon(t, filepath.Join(dir, "missing.pem"), Rules{Max: pemMax}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestReadModes(t *testing.T) {
	for _, c := range []struct {
		mode  os.FileMode
		rules Rules
		want  string // "" = accepted
	}{
		{0o644, Rules{Trusted: true}, ""},
		{0o444, Rules{Trusted: true}, ""},
		{0o664, Rules{Trusted: true}, "is writable by its group or others (mode 0664), so another local user could replace it: chmod go-w it"},
		{0o646, Rules{Trusted: true}, "is writable by its group or others (mode 0646)"},
		{0o666, Rules{}, ""}, // no rules, no refusal
		{0o600, Rules{Trusted: true, Secret: true}, ""},
		{0o640, Rules{Trusted: true, Secret: true}, ""}, // the service's group may read a key
		{0o660, Rules{Trusted: true, Secret: true}, "is writable by its group or others (mode 0660)"},
		{0o620, Rules{Trusted: true, Secret: true}, "is writable by its group or others (mode 0620)"},
		{0o644, Rules{Trusted: true, Secret: true}, "is readable by others (mode 0644): chmod 0640 it"},
		{0o642, Rules{Trusted: true, Secret: true}, "is writable by others (mode 0642): chmod 0640 it"},
	} {
		p := write(t, "f.pem", []byte("x"), c.mode)
		c.rules.Max = pemMax
		_, err := readSoon(t, p, c.rules)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("mode %04o %+v refused: %v", c.mode, c.rules, err)
		case c.want != "" && (err == nil || !strings.HasPrefix(err.Error(), p+" "+c.want)):
			t.Errorf("mode %04o %+v: %v, want %q", c.mode, c.rules, err, c.want)
		}
	}
}
