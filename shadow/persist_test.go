package shadow

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func applyDoc(t *testing.T, k *kit, js string, full bool) outcome {
	t.Helper()
	doc, err := decodeObject([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	k.s.mu.Lock()
	defer k.s.mu.Unlock()
	return k.s.applyLocked(doc, full)
}

// The state file holds the applied settings in the form given, and leaves
// no temporary files behind.
func TestStateFileWrittenAtomically(t *testing.T) {
	dir := t.TempDir()
	k := newKit(t, dir, nil)
	if err := k.s.ApplyPersisted(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(k.cfg.StateFile); !os.IsNotExist(err) {
		t.Fatalf("state file made with nothing to keep: %v", err)
	}
	applyDoc(t, k, `{"sensors":{"a":{"interval":"90s"}},"mqtt":{"batch":{"max_readings":7.0}}}`, false)
	b, err := os.ReadFile(k.cfg.StateFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"device": "kit-001"`, `"interval": "90s"`, `"max_readings": 7.0`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("state file lacks %s:\n%s", want, b)
		}
	}
	fi, _ := os.Stat(k.cfg.StateFile)
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v", fi.Mode())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("leftovers in the state dir: %v", ents)
	}

	k2 := newKit(t, dir, nil)
	if err := k2.s.ApplyPersisted(); err != nil {
		t.Fatal(err)
	}
	if s := k2.target.snap(); s.interval["a"] != 90*time.Second || s.batch != 7 {
		t.Fatalf("reloaded %+v", s)
	}
	// Echoed as given after a restart too.
	k2.s.mu.Lock()
	doc := k2.s.buildLocked(k2.live.get())
	k2.s.mu.Unlock()
	if at(doc, "sensors", "a", "interval") != "90s" || at(doc, "mqtt", "batch", "max_readings").(interface{ String() string }).String() != "7.0" {
		t.Fatalf("reported after restart %v", doc)
	}
}

// A corrupt state file is set aside and logged; the agent starts from the
// config file.
func TestCorruptStateFileSetAside(t *testing.T) {
	dir := t.TempDir()
	k := newKit(t, dir, nil)
	for _, junk := range []string{`{"device":"kit-001","desired":{"sensors":`, "\x00\x00\x00", `{"device":"kit-001","desired":{},"extra":1}`, `{"desired":{}}`} {
		if err := os.WriteFile(k.cfg.StateFile, []byte(junk), 0o640); err != nil {
			t.Fatal(err)
		}
		if err := k.s.ApplyPersisted(); err != nil {
			t.Fatalf("%q: %v", junk, err)
		}
		if b, err := os.ReadFile(k.cfg.StateFile + ".bad"); err != nil || string(b) != junk {
			t.Fatalf("%q not set aside: %v", junk, err)
		}
		if _, err := os.Stat(k.cfg.StateFile); !os.IsNotExist(err) {
			t.Fatalf("corrupt file left in place")
		}
		if k.target.callCount() != 0 {
			t.Fatal("target called from a corrupt file")
		}
	}
	if !strings.Contains(k.logs.String(), "corrupt state file") || !strings.Contains(k.logs.String(), k.cfg.StateFile) {
		t.Fatalf("not logged with the file name:\n%s", k.logs.String())
	}
}

// Another kit's state file (a cloned SD card) is not applied.
func TestStateFileOfAnotherDeviceIgnored(t *testing.T) {
	dir := t.TempDir()
	k := newKit(t, dir, nil)
	js := `{"device":"kit-999","desired":{"sensors":{"a":{"interval":"60s"}}}}`
	if err := os.WriteFile(k.cfg.StateFile, []byte(js), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := k.s.ApplyPersisted(); err != nil {
		t.Fatal(err)
	}
	if k.target.callCount() != 0 || !strings.Contains(k.logs.String(), "another device") {
		t.Fatalf("foreign state applied; log:\n%s", k.logs.String())
	}
}

// An unreadable state file is an error for the caller, not silence.
func TestUnreadableStateFileIsAnError(t *testing.T) {
	if os.Geteuid() == 0 {
		// root reads anything: make the path a directory instead.
		k := newKit(t, t.TempDir(), nil)
		if err := os.Mkdir(k.cfg.StateFile, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := k.s.ApplyPersisted(); err == nil || !strings.Contains(err.Error(), k.cfg.StateFile) {
			t.Fatalf("got %v", err)
		}
		return
	}
	k := newKit(t, t.TempDir(), nil)
	if err := os.WriteFile(k.cfg.StateFile, []byte("{}"), 0o000); err != nil {
		t.Fatal(err)
	}
	if err := k.s.ApplyPersisted(); err == nil || !strings.Contains(err.Error(), k.cfg.StateFile) {
		t.Fatalf("got %v", err)
	}
}

// A state file that is not a regular file is refused at once, naming the
// file (a FIFO would block the start, /dev/zero fill memory) and left where
// it is; one larger than kitd ever writes is damage and set aside.
func TestStateFileTypeAndSize(t *testing.T) {
	k := newKit(t, t.TempDir(), nil)
	if err := syscall.Mkfifo(k.cfg.StateFile, 0o640); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- k.s.ApplyPersisted() }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), k.cfg.StateFile+" is a named pipe (FIFO), not a regular file") {
			t.Fatalf("FIFO: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("ApplyPersisted blocked on a FIFO")
	}
	if fi, err := os.Lstat(k.cfg.StateFile); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Fatalf("the FIFO was moved: %v", err)
	}

	k = newKit(t, t.TempDir(), nil)
	if err := os.Symlink("/dev/zero", k.cfg.StateFile); err != nil {
		t.Fatal(err)
	}
	if err := k.s.ApplyPersisted(); err == nil || !strings.Contains(err.Error(), "is a character device") {
		t.Fatalf("/dev/zero: %v", err)
	}

	k = newKit(t, t.TempDir(), nil)
	big := append([]byte(`{"device":"kit-001","desired":{}}`), bytes.Repeat([]byte(" "), maxStateFileBytes)...)
	if err := os.WriteFile(k.cfg.StateFile, big, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := k.s.ApplyPersisted(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(k.cfg.StateFile + ".bad"); err != nil || fi.Size() != int64(len(big)) {
		t.Fatalf("oversized state file not set aside: %v", err)
	}
	if !strings.Contains(k.logs.String(), "is larger than") {
		t.Fatalf("not logged:\n%s", k.logs.String())
	}
}

// A reload takes a new base and applies the persisted settings over it;
// a setting for a sensor no longer configured is dropped and reported.
func TestReapplyAfterReload(t *testing.T) {
	dir := t.TempDir()
	k := newKit(t, dir, nil)
	if err := k.s.ApplyPersisted(); err != nil {
		t.Fatal(err)
	}
	applyDoc(t, k, `{"sensors":{"a":{"interval":"60s"},"b":{"enabled":false}}}`, false)

	// SIGHUP: the new file drops sensor b and sets a to 3s; the lead has
	// already given the Target the new file's values.
	k.target.mu.Lock()
	k.target.interval = map[string]time.Duration{"a": 3 * time.Second}
	k.target.enabled = map[string]bool{"a": true}
	k.target.mu.Unlock()
	k.live.set(func(s *State) { s.Sensors = s.Sensors[:1] })
	if err := k.s.Reapply([]string{"a"}, 4); err != nil {
		t.Fatal(err)
	}
	if got := k.target.intervalOf("a"); got != time.Minute {
		t.Fatalf("a = %s after reapply", got)
	}
	k.s.mu.Lock()
	errs := copyErrs(k.s.errs)
	base, batch := k.s.base.interval["a"], k.s.base.batch
	k.s.mu.Unlock()
	if !strings.Contains(errs["sensors.b"], "no such sensor") {
		t.Fatalf("dropped setting not reported: %v", errs)
	}
	if base != 3*time.Second || batch != 4 {
		t.Fatalf("new base %s %d", base, batch)
	}
	// Removing the remote setting now returns to the new file's value.
	applyDoc(t, k, `{}`, true)
	if got := k.target.intervalOf("a"); got != 3*time.Second {
		t.Fatalf("a = %s after removal, want the reloaded file's 3s", got)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "shadow.json"))
	if strings.Contains(string(b), `"b"`) || strings.Contains(string(b), "60s") {
		t.Fatalf("state file keeps dropped settings:\n%s", b)
	}
}

// A disabled shadow touches nothing: no state file read, no Target call,
// nothing reported.
func TestDisabledShadowDoesNothing(t *testing.T) {
	dir := t.TempDir()
	k := newKit(t, dir, nil)
	applyDoc(t, k, `{"sensors":{"a":{"interval":"60s"}}}`, false)
	calls := k.target.callCount()

	k2 := newKit(t, dir, func(c *Config) { c.Enabled = false })
	if err := k2.s.ApplyPersisted(); err != nil {
		t.Fatal(err)
	}
	if err := k2.s.Reapply([]string{"a", "b"}, 1); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { k2.s.OnConnect(context.Background(), nil); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("OnConnect of a disabled shadow did not return")
	}
	if k2.target.callCount() != 0 || k.target.callCount() != calls || len(k2.s.Reported()) != 0 {
		t.Fatal("a disabled shadow acted")
	}
}
