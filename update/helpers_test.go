package update

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/internal/testkit"
)

// keys writes a fresh ed25519 pair in openssl's PEM forms and returns the
// private key and the paths.
type keys struct {
	priv          ed25519.PrivateKey
	privFile, pub string
}

func newKeys(t *testing.T) keys {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	k := keys{priv: priv, privFile: filepath.Join(dir, "release.key"), pub: filepath.Join(dir, "release.pub")}
	writeFile(t, k.privFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}), 0o600)
	writeFile(t, k.pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pk}), 0o644)
	return k
}

func writeFile(t *testing.T, path string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// release is a binary offered by a job.
type release struct {
	body    []byte
	version string
}

// doc is the job document for r, signed with k.
func (r release) doc(k keys, url string) Document {
	sum := sha256.Sum256(r.body)
	return Document{
		Operation: OperationName, URL: url, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(r.body)),
		Signature: base64.StdEncoding.EncodeToString(ed25519.Sign(k.priv, r.body)), Version: r.version,
	}
}

func (d Document) raw(t *testing.T) []byte {
	t.Helper()
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// server is an HTTPS server (its own CA) serving files with Range
// support, recording each request's Range header.
type server struct {
	*httptest.Server
	ca string

	mu     sync.Mutex
	files  map[string][]byte
	ranges []string
	// hook, when set, serves a request instead (n counts requests for
	// the path, from 1).
	hook func(w http.ResponseWriter, r *http.Request, n int) bool
}

func newServer(t *testing.T) *server {
	t.Helper()
	s := &server{files: map[string][]byte{}}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	s.ca = filepath.Join(t.TempDir(), "ca.pem")
	writeFile(t, s.ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw}), 0o644)
	return s
}

func (s *server) put(path string, b []byte) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[path] = b
	return s.URL + path + "?X-Amz-Signature=secret"
}

func (s *server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	b, ok := s.files[r.URL.Path]
	s.ranges = append(s.ranges, r.Header.Get("Range"))
	n := len(s.ranges)
	hook := s.hook
	s.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	if hook != nil && hook(w, r, n) {
		return
	}
	http.ServeContent(w, r, "kitd", time.Unix(0, 0), strings.NewReader(string(b)))
}

func (s *server) rangesSeen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ranges...)
}

// fakes builds testdata/fakekitd once per version and behaviour, for the
// host (under qemu the test binary is ARM, the fakes still run natively).
var fakes struct {
	mu    sync.Mutex
	dir   string
	built map[string]string
}

func fake(t *testing.T, version, behaviour string) string {
	t.Helper()
	fakes.mu.Lock()
	defer fakes.mu.Unlock()
	key := version + "-" + behaviour
	if p, ok := fakes.built[key]; ok {
		return p
	}
	if fakes.built == nil {
		d, err := os.MkdirTemp("", "kitd-update-fakes-")
		if err != nil {
			t.Fatal(err)
		}
		fakes.dir, fakes.built = d, map[string]string{}
	}
	out := filepath.Join(fakes.dir, key)
	host := func(v string) string {
		b, err := exec.Command("go", "env", v).Output()
		if err != nil {
			t.Fatalf("go env %s: %v", v, err)
		}
		return strings.TrimSpace(string(b))
	}
	cmd := exec.Command("go", "build", "-o", out, "-ldflags", fmt.Sprintf("-X main.version=%s -X main.behaviour=%s", version, behaviour), "./testdata/fakekitd")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+host("GOHOSTOS"), "GOARCH="+host("GOHOSTARCH"))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build fakekitd: %v\n%s", err, b)
	}
	fakes.built[key] = out
	return out
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fakes.dir != "" {
		os.RemoveAll(fakes.dir)
	}
	os.Exit(code)
}

// supervisor starts bin the way systemd's Restart=on-failure with
// RestartPreventExitStatus=2 does: again after any exit but 0 and 2 or a
// stop, up to a bound. Stdout lines of every start are collected.
type supervisor struct {
	t   *testing.T
	bin string
	env []string

	stderr testkit.LockedBuffer // the logs, shown when the test fails

	mu     sync.Mutex
	lines  []string
	cur    *exec.Cmd
	exits  []string
	pids   []int // main process of each start
	starts int
	done   chan struct{}
	stop   bool
}

const maxStarts = 10

func supervise(t *testing.T, bin string, env []string) *supervisor {
	t.Helper()
	s := &supervisor{t: t, bin: bin, env: env, done: make(chan struct{})}
	go s.loop()
	t.Cleanup(func() {
		s.shutdown()
		if t.Failed() {
			t.Logf("stderr of %s:\n%s", bin, s.stderr.String())
		}
	})
	return s
}

func (s *supervisor) loop() {
	defer close(s.done)
	for {
		s.mu.Lock()
		if s.stop || s.starts >= maxStarts {
			s.mu.Unlock()
			return
		}
		s.starts++
		cmd := exec.Command(s.bin, "run")
		cmd.Env = s.env
		cmd.Stderr = &s.stderr
		out, err := cmd.StdoutPipe()
		if err == nil {
			err = cmd.Start()
		}
		if err != nil {
			s.exits = append(s.exits, "start: "+err.Error())
			s.mu.Unlock()
			return
		}
		s.cur = cmd
		s.pids = append(s.pids, cmd.Process.Pid)
		s.mu.Unlock()
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			s.mu.Lock()
			s.lines = append(s.lines, sc.Text())
			s.mu.Unlock()
		}
		err = cmd.Wait()
		code := cmd.ProcessState.ExitCode()
		s.mu.Lock()
		s.exits = append(s.exits, fmt.Sprint(code))
		s.cur = nil
		s.mu.Unlock()
		if err == nil || code == 2 {
			return
		}
	}
}

// has reports whether a line starting with prefix was printed.
func (s *supervisor) has(prefix string) bool {
	return s.line(prefix) != ""
}

func (s *supervisor) line(prefix string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.lines {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

func (s *supervisor) waitLine(prefix string) string {
	s.t.Helper()
	testkit.WaitFor(s.t, time.Minute, fmt.Sprintf("a line %q (lines so far: %q)", prefix, s.snapshot()), func() bool { return s.has(prefix) })
	return s.line(prefix)
}

func (s *supervisor) snapshot() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lines...)
}

// kill sends sig to the process running now.
func (s *supervisor) kill(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil {
		_ = s.cur.Process.Signal(sig)
	}
}

// shutdown stops the service as systemctl stop does (SIGTERM to every
// process of the service, then SIGKILL) and waits for the loop.
func (s *supervisor) shutdown() {
	s.mu.Lock()
	s.stop = true
	if s.cur != nil {
		_ = s.cur.Process.Signal(syscall.SIGTERM)
	}
	s.mu.Unlock()
	select {
	case <-s.done:
	case <-time.After(time.Minute):
		s.kill(syscall.SIGKILL)
		<-s.done
	}
}

// result parses the last "result VERSION JSON" line.
func (s *supervisor) result(t *testing.T) (string, map[string]any) {
	t.Helper()
	var last string
	for _, l := range s.snapshot() {
		if strings.HasPrefix(l, "result ") {
			last = l
		}
	}
	f := strings.SplitN(last, " ", 3)
	if len(f) != 3 {
		t.Fatalf("no result line in %q", s.snapshot())
	}
	var r map[string]any
	if err := json.Unmarshal([]byte(f[2]), &r); err != nil {
		t.Fatalf("%q: %v", last, err)
	}
	return f[1], r
}
