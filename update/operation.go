package update

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kitd-dev/kitd/jobs"
)

// OperationName is the job document's "operation" for an update.
const OperationName = "kitd.update"

// maxBinary bounds the document's size: kitd is about 10 MB, and the
// signature check holds the whole file in memory (pure Ed25519) on a
// board with 512 MB; a document asking for more is a mistake.
const maxBinary = 64 << 20

// Document is a kitd.update job document.
type Document struct {
	Operation string `json:"operation"`
	// URL is where the binary is: https only (an S3 presigned URL).
	URL string `json:"url"`
	// SHA256 is the binary's digest, 64 hex digits.
	SHA256 string `json:"sha256"`
	// Size is the binary's length in bytes; no more is ever downloaded.
	Size int64 `json:"size"`
	// Signature is the base64 ed25519 signature of the binary's bytes.
	Signature string `json:"signature"`
	// Version is the binary's version (semver); it names its directory.
	Version string `json:"version"`
	// AllowDowngrade lets Version be older than the running version.
	AllowDowngrade bool `json:"allow_downgrade"`
}

// ParseDocument checks a job document's form; errors name the field.
// Unknown fields are refused, so a misspelt allow_downgrade cannot pass
// unnoticed.
func ParseDocument(raw []byte) (Document, error) {
	var d Document
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return d, fmt.Errorf("%w: %v", ErrDocument, err)
	}
	var errs []error
	if d.Operation != OperationName {
		errs = append(errs, fmt.Errorf("operation: %q, want %q", d.Operation, OperationName))
	}
	if u, err := url.Parse(d.URL); err != nil || u.Scheme != "https" || u.Host == "" {
		errs = append(errs, errors.New("url: want an https:// URL"))
	}
	if b, err := hex.DecodeString(d.SHA256); err != nil || len(b) != sha256.Size {
		errs = append(errs, errors.New("sha256: want 64 hex digits"))
	}
	if d.Size <= 0 || d.Size > maxBinary {
		errs = append(errs, fmt.Errorf("size: %d: want 1..%d bytes", d.Size, maxBinary))
	}
	if _, err := DecodeSignature(d.Signature); err != nil {
		errs = append(errs, err)
	}
	if _, err := parseVersion(d.Version); err != nil {
		errs = append(errs, fmt.Errorf("version: %v", err))
	}
	if len(errs) > 0 {
		return d, fmt.Errorf("%w: %w", ErrDocument, errors.Join(errs...))
	}
	d.SHA256 = strings.ToLower(d.SHA256)
	return d, nil
}

// Deps are what the operation needs from the agent.
type Deps struct {
	// Config is the update section of the running config.
	Config Config
	// Dir is the update directory (Dir(getenv)); "" refuses updates
	// (not run by systemd, which would not restart the agent).
	Dir string
	// Version is the running version.
	Version string
	// Restart arranges a clean stop of the agent with an exit status that
	// systemd restarts (Restart=on-failure: not 0, not 2). It must
	// return at once; the stop happens after Run returns.
	Restart func()
	// Trial is this process's trial, nil when it is not one.
	Trial *Trial
	Log   *slog.Logger
}

// Operation is the kitd.update job operation (jobs.Operation).
type Operation struct {
	d      Deps
	client *http.Client
}

var _ jobs.Operation = (*Operation)(nil)

// NewOperation checks d; an unreadable update.ca_file is an error here.
func NewOperation(d Deps) (*Operation, error) {
	if d.Restart == nil {
		return nil, errors.New("update: Deps.Restart is nil")
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	d.Log = d.Log.With("component", "update")
	if d.Config.HealthTimeout == 0 {
		d.Config.HealthTimeout = DefaultConfig().HealthTimeout
	}
	c, err := newHTTPClient(d.Config.CAFile)
	if err != nil {
		return nil, fmt.Errorf("update.ca_file: %w", err)
	}
	return &Operation{d: d, client: c}, nil
}

func rejected(err error) jobs.Result {
	return jobs.Result{Status: jobs.Rejected, Details: map[string]string{"reason": err.Error()}}
}

func (o *Operation) failed(err error) jobs.Result {
	return jobs.Result{Status: jobs.Failed, Details: map[string]string{"reason": err.Error(), "version": o.d.Version}}
}

// Run runs or resumes one update job. First run: download, verify,
// install, record the trial, Restart, and stay IN_PROGRESS. Resumed: the
// outcome the launcher or the new version recorded (SUCCEEDED in the new
// version once healthy; FAILED with the reason in the old one after a
// rollback), or, when the agent stopped before installing, the download
// resumes where it was.
func (o *Operation) Run(ctx context.Context, e *jobs.Execution) jobs.Result {
	doc, err := ParseDocument(e.Document)
	if err != nil {
		return rejected(err)
	}
	if o.d.Dir == "" {
		return rejected(ErrNoDir)
	}
	s, err := LoadState(o.d.Dir)
	if err != nil {
		return o.failed(err)
	}
	if out := s.Outcome; out != nil && out.JobID == e.JobID {
		return o.outcome(out)
	}
	if tr := s.Trial; tr != nil {
		if tr.JobID != e.JobID {
			return rejected(fmt.Errorf("update: job %s (version %s) is still in its trial", tr.JobID, tr.To))
		}
		return o.pending(ctx, e, s)
	}
	return o.install(ctx, e, doc, s)
}

func (o *Operation) outcome(out *Outcome) jobs.Result {
	d := map[string]string{"from": out.From, "to": out.To, "version": o.d.Version}
	if out.Healthy {
		return jobs.Result{Status: jobs.Succeeded, Details: d}
	}
	d["reason"] = "rolled back to " + out.From + ": " + out.Reason
	return jobs.Result{Status: jobs.Failed, Details: d}
}

// pending handles a job whose version is installed and not yet proven.
func (o *Operation) pending(ctx context.Context, e *jobs.Execution, s State) jobs.Result {
	tr := s.Trial
	if o.d.Trial.JobID() == e.JobID {
		// We are the new version: SUCCEEDED once the agent confirms
		// health. If it never does, the launcher stops this process and
		// the old version reports the failure.
		select {
		case <-o.d.Trial.Confirmed():
			return jobs.Result{Status: jobs.Succeeded, Details: map[string]string{"from": tr.From, "to": tr.To, "version": o.d.Version}}
		case <-ctx.Done():
			return jobs.Result{}
		}
	}
	if !e.Resumed {
		// Delivered again before the restart took place.
		o.d.Restart()
		return jobs.Result{}
	}
	if tr.Attempts == 0 {
		// The agent restarted without the launcher (not through `kitd
		// run`): the new version was never tried. Retrying would loop.
		if _, err := (&launcher{o: LaunchOptions{Dir: o.d.Dir}, log: o.d.Log}).record(*tr, "the agent restarted without starting the new version (not run through `kitd run`'s launcher)"); err != nil {
			return o.failed(err)
		}
		s, err := LoadState(o.d.Dir)
		if err != nil || s.Outcome == nil {
			return o.failed(fmt.Errorf("update: trial not recorded: %v", err))
		}
		return o.outcome(s.Outcome)
	}
	// Its trial is running in another process; that one, or the
	// rollback, will answer.
	return jobs.Result{}
}

func (o *Operation) progress(ctx context.Context, e *jobs.Execution, kv ...string) {
	if e.Progress == nil {
		return
	}
	d := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		d[kv[i]] = kv[i+1]
	}
	if err := e.Progress(ctx, d); err != nil {
		o.d.Log.Debug("update: progress not reported", "err", err)
	}
}

func (o *Operation) install(ctx context.Context, e *jobs.Execution, doc Document, s State) jobs.Result {
	log := o.d.Log.With("job", e.JobID, "version", doc.Version)
	if o.d.Config.PublicKeyFile == "" {
		return rejected(ErrNoPublicKey)
	}
	pub, err := LoadPublicKey(o.d.Config.PublicKeyFile)
	if err != nil {
		return rejected(fmt.Errorf("update.public_key_file: %w", err))
	}
	if doc.Version == o.d.Version {
		return rejected(fmt.Errorf("version %s is already running", doc.Version))
	}
	up, err := IsUpgrade(o.d.Version, doc.Version)
	if err != nil {
		return rejected(err)
	}
	if !up && !doc.AllowDowngrade {
		return rejected(fmt.Errorf("%w: %s is older than the running %s (allow_downgrade: true to force)", ErrDowngrade, doc.Version, o.d.Version))
	}
	dl := filepath.Join(o.d.Dir, downloadName)
	if err := os.MkdirAll(dl, 0o750); err != nil {
		return o.failed(err)
	}
	// Named by digest: a restart resumes the same bytes, whatever the job.
	part := filepath.Join(dl, doc.SHA256+".part")
	log.Info("update: downloading", "url", redact(doc.URL), "size", doc.Size)
	size := strconv.FormatInt(doc.Size, 10)
	o.progress(ctx, e, "step", "download", "bytes", "0", "size", size)
	if err := download(ctx, o.client, doc.URL, doc.Size, part, func(have int64) {
		o.progress(ctx, e, "step", "download", "bytes", strconv.FormatInt(have, 10), "size", size)
	}); err != nil {
		if ctx.Err() != nil {
			return jobs.Result{} // stopping: resumed at the next start
		}
		if errors.Is(err, ErrTooLarge) || errors.Is(err, ErrSize) {
			_ = os.Remove(part)
		}
		return o.failed(fmt.Errorf("download %s: %w", redact(doc.URL), err))
	}
	o.progress(ctx, e, "step", "verify")
	if err := verify(part, doc, pub); err != nil {
		// Bad bytes are never resumed from.
		_ = os.Remove(part)
		log.Error("update: refused", "err", err)
		return o.failed(err)
	}
	dst := binaryPath(o.d.Dir, doc.Version)
	if err := installFile(part, dst); err != nil {
		return o.failed(fmt.Errorf("install %s: %w", dst, err))
	}
	s.Trial = &TrialRecord{JobID: e.JobID, From: o.d.Version, To: doc.Version, HealthTimeout: Duration(o.d.Config.HealthTimeout)}
	s.Outcome = nil
	if err := saveState(o.d.Dir, s); err != nil {
		return o.failed(fmt.Errorf("install: %w", err))
	}
	log.Info("update: installed, restarting into the new version", "from", o.d.Version)
	o.progress(ctx, e, "step", "restart", "from", o.d.Version, "to", doc.Version)
	o.d.Restart()
	return jobs.Result{}
}

// verify checks size, sha256 and the signature of the downloaded file.
func verify(path string, doc Document, pub []byte) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() != doc.Size {
		return fmt.Errorf("%w: %d bytes, the job says %d", ErrSize, st.Size(), doc.Size)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != doc.SHA256 {
		return fmt.Errorf("%w: the download's sha256 is %s, the job says %s", ErrHash, got, doc.SHA256)
	}
	sig, _ := DecodeSignature(doc.Signature)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := verifyReader(pub, sig, f, "the download"); err != nil {
		return fmt.Errorf("%w (update.public_key_file)", err)
	}
	return nil
}

// installFile moves the verified file to dst (rename within the update
// directory: one file system), executable by the service's user and
// group only, with both directories fsynced.
func installFile(src, dst string) error {
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	if err := os.Chmod(src, 0o750); err != nil {
		return err
	}
	if err := os.Rename(src, dst); err != nil {
		return err
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	return syncDir(filepath.Dir(src))
}

// redact drops the query of a presigned URL: it is a credential.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	p.RawQuery = ""
	return p.Redacted()
}
