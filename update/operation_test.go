package update

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kitd-dev/kitd/jobs"
)

// opEnv is an operation in a running "1.0.0" with its own directory.
type opEnv struct {
	dir      string
	k        keys
	srv      *server
	restarts atomic.Int32
	cfg      Config
	progress []map[string]string // statusDetails reported while IN_PROGRESS
}

func newOpEnv(t *testing.T) *opEnv {
	e := &opEnv{dir: filepath.Join(t.TempDir(), "update"), k: newKeys(t), srv: newServer(t)}
	e.cfg = Config{PublicKeyFile: e.k.pub, CAFile: e.srv.ca, HealthTimeout: DefaultConfig().HealthTimeout}
	return e
}

func (e *opEnv) run(t *testing.T, version string, doc []byte) jobs.Result {
	t.Helper()
	op, err := NewOperation(Deps{Config: e.cfg, Dir: e.dir, Version: version, Restart: func() { e.restarts.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	return op.Run(context.Background(), &jobs.Execution{JobID: "job-1", Document: doc, Progress: func(_ context.Context, d map[string]string) error {
		e.progress = append(e.progress, d)
		return nil
	}})
}

// untouched fails unless nothing was installed and no restart asked for.
func (e *opEnv) untouched(t *testing.T) {
	t.Helper()
	if n := e.restarts.Load(); n != 0 {
		t.Errorf("Restart called %d times", n)
	}
	s, err := LoadState(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Trial != nil || s.Current != "" {
		t.Errorf("state changed: %+v", s)
	}
	if ents, _ := os.ReadDir(filepath.Join(e.dir, versionsName)); len(ents) > 0 {
		t.Errorf("versions installed: %v", ents)
	}
}

func wantResult(t *testing.T, r jobs.Result, status jobs.Status, reason string) {
	t.Helper()
	if r.Status != status || !strings.Contains(r.Details["reason"], reason) {
		t.Fatalf("result %s %q, want %s with a reason containing %q", r.Status, r.Details, status, reason)
	}
}

func TestRefusals(t *testing.T) {
	rel := release{body: []byte(strings.Repeat("a new kitd ", 5000)), version: "1.1.0"}
	cases := []struct {
		name    string
		edit    func(e *opEnv, d *Document)
		running string
		status  jobs.Status
		reason  string
	}{
		{"no public key", func(e *opEnv, d *Document) { e.cfg.PublicKeyFile = "" }, "1.0.0", jobs.Rejected, "update.public_key_file is not set"},
		{"unreadable public key", func(e *opEnv, d *Document) { e.cfg.PublicKeyFile = filepath.Join(e.dir, "nope.pub") }, "1.0.0", jobs.Rejected, "update.public_key_file"},
		{"downgrade", nil, "1.2.0", jobs.Rejected, "downgrade refused: 1.1.0 is older than the running 1.2.0"},
		{"same version", nil, "1.1.0", jobs.Rejected, "already running"},
		{"bad hash", func(e *opEnv, d *Document) { d.SHA256 = strings.Repeat("0", 64) }, "1.0.0", jobs.Failed, "sha256 mismatch"},
		{"bad signature", func(e *opEnv, d *Document) {
			other := newKeys(t)
			d.Signature = release{body: append([]byte("x"), rel.body...)}.doc(other, "").Signature
		}, "1.0.0", jobs.Failed, "signature does not verify"},
		{"signed by another key", func(e *opEnv, d *Document) { d.Signature = rel.doc(newKeys(t), "").Signature }, "1.0.0", jobs.Failed, "signature does not verify"},
		{"oversize", func(e *opEnv, d *Document) { d.Size-- }, "1.0.0", jobs.Failed, "larger than the job's size"},
		{"short", func(e *opEnv, d *Document) { d.Size++ }, "1.0.0", jobs.Failed, "size differs"},
		{"oversize, not announced", func(e *opEnv, d *Document) {
			d.Size--
			e.srv.hook = func(w http.ResponseWriter, r *http.Request, n int) bool {
				// Chunked: no Content-Length to refuse up front.
				w.WriteHeader(http.StatusOK)
				w.(http.Flusher).Flush()
				w.Write(rel.body)
				return true
			}
		}, "1.0.0", jobs.Failed, "the server sent more than"},
		{"plain http", func(e *opEnv, d *Document) { d.URL = strings.Replace(d.URL, "https:", "http:", 1) }, "1.0.0", jobs.Rejected, "url: want an https:// URL"},
		{"bad version", func(e *opEnv, d *Document) { d.Version = "../../bin" }, "1.0.0", jobs.Rejected, "version:"},
		{"not found", func(e *opEnv, d *Document) { d.URL = e.srv.URL + "/missing" }, "1.0.0", jobs.Failed, "404"},
		{"untrusted server", func(e *opEnv, d *Document) { e.cfg.CAFile = "" }, "1.0.0", jobs.Failed, "certificate"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newOpEnv(t)
			d := rel.doc(e.k, e.srv.put("/kitd", rel.body))
			if c.edit != nil {
				c.edit(e, &d)
			}
			r := e.run(t, c.running, d.raw(t))
			wantResult(t, r, c.status, c.reason)
			if strings.Contains(r.Details["reason"], "secret") {
				t.Errorf("the presigned URL's query leaked into the reason: %q", r.Details["reason"])
			}
			e.untouched(t)
			// Bad bytes are not kept for a resume.
			if ents, _ := os.ReadDir(filepath.Join(e.dir, downloadName)); len(ents) > 0 && c.status == jobs.Failed && c.name != "not found" && c.name != "untrusted server" {
				t.Errorf("download left behind: %v", ents)
			}
		})
	}
}

func TestDocumentErrorsNameFields(t *testing.T) {
	_, err := ParseDocument([]byte(`{"operation":"kitd.update","url":"https://x/k","sha256":"zz","size":0,"signature":"AA==","version":"1","allow_dowgrade":true}`))
	if !errors.Is(err, ErrDocument) || !strings.Contains(err.Error(), "allow_dowgrade") {
		t.Fatalf("unknown field: %v", err)
	}
	_, err = ParseDocument([]byte(`{"operation":"kitd.update","url":"https://x/k","sha256":"zz","size":0,"signature":"AA==","version":"1"}`))
	for _, f := range []string{"sha256:", "size:", "signature:", "version:"} {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error %q does not name %s", err, f)
		}
	}
}

func TestAllowDowngradeInstalls(t *testing.T) {
	e := newOpEnv(t)
	rel := release{body: []byte(strings.Repeat("an older kitd ", 10000)), version: "0.9.0"}
	d := rel.doc(e.k, e.srv.put("/kitd", rel.body))
	d.AllowDowngrade = true
	if r := e.run(t, "1.0.0", d.raw(t)); r.Status != "" {
		t.Fatalf("result %+v, want IN_PROGRESS", r)
	}
	s, _ := LoadState(e.dir)
	if s.Trial == nil || s.Trial.To != "0.9.0" || s.Trial.From != "1.0.0" || e.restarts.Load() != 1 {
		t.Fatalf("state %+v, restarts %d", s, e.restarts.Load())
	}
	// Progress: the download in tenths, then verify and restart.
	var steps []string
	for _, p := range e.progress {
		steps = append(steps, p["step"]+":"+p["bytes"])
	}
	got := strings.Join(steps, " ")
	if !strings.HasPrefix(got, "download:0 download:") || !strings.HasSuffix(got, "download:"+strconv.Itoa(len(rel.body))+" verify: restart:") || len(steps) < 8 {
		t.Errorf("progress %q", got)
	}
}

// The connection drops mid-way: the next request asks for the rest.
func TestDownloadResumesAfterDrop(t *testing.T) {
	for _, ranges := range []bool{true, false} {
		name := "range"
		if !ranges {
			name = "no range support"
		}
		t.Run(name, func(t *testing.T) {
			e := newOpEnv(t)
			rel := release{body: []byte(strings.Repeat("0123456789abcdef", 1<<14)), version: "1.1.0"}
			d := rel.doc(e.k, e.srv.put("/kitd", rel.body))
			half := len(rel.body) / 2
			e.srv.hook = func(w http.ResponseWriter, r *http.Request, n int) bool {
				if n == 1 {
					// Half the bytes, then the connection goes.
					w.Header().Set("Content-Length", strconv.Itoa(len(rel.body)))
					w.WriteHeader(http.StatusOK)
					w.Write(rel.body[:half])
					w.(http.Flusher).Flush()
					conn, buf, err := w.(http.Hijacker).Hijack()
					if err == nil {
						buf.Flush()
						conn.Close()
					}
					return true
				}
				if !ranges {
					w.WriteHeader(http.StatusOK)
					w.Write(rel.body)
					return true
				}
				return false
			}
			if r := e.run(t, "1.0.0", d.raw(t)); r.Status != "" {
				t.Fatalf("result %+v, want IN_PROGRESS", r)
			}
			got := e.srv.rangesSeen()
			if len(got) != 2 || got[0] != "" || !strings.HasPrefix(got[1], "bytes=") || got[1] == "bytes=0-" {
				t.Fatalf("requests' Range headers %q, want none then a resume", got)
			}
			b, err := os.ReadFile(binaryPath(e.dir, "1.1.0"))
			if err != nil || string(b) != string(rel.body) {
				t.Fatalf("installed binary differs (%v)", err)
			}
			if st, _ := os.Stat(binaryPath(e.dir, "1.1.0")); st.Mode().Perm()&0o100 == 0 {
				t.Errorf("installed binary mode %v: not executable", st.Mode())
			}
		})
	}
}
