package update

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestVersionOrder(t *testing.T) {
	// Ascending, semver.org's precedence example and more.
	order := []string{"0.9.9", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "v1.0.1", "1.2.0", "1.10.0", "2.0.0"}
	for i := 1; i < len(order); i++ {
		a, err1 := parseVersion(order[i-1])
		b, err2 := parseVersion(order[i])
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if a.compare(b) >= 0 || b.compare(a) <= 0 {
			t.Errorf("%s < %s not seen", order[i-1], order[i])
		}
	}
	if a, _ := parseVersion("1.0.0+build.5"); a.compare(semver{num: [3]uint64{1, 0, 0}}) != 0 {
		t.Error("build metadata must not count")
	}
	for _, bad := range []string{"", "dev", "1.0", "1.0.0.0", "01.0.0", "1.0.0-", "1.0.0-01", "1.0.0/x", "../1.0.0", "1.0.0-a..b"} {
		if _, err := parseVersion(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	// A development build is older than every release.
	if up, err := IsUpgrade("dev", "0.0.1"); !up || err != nil {
		t.Errorf("dev -> 0.0.1: %v %v", up, err)
	}
	if up, _ := IsUpgrade("1.2.0", "1.1.9"); up {
		t.Error("1.2.0 -> 1.1.9 is not an upgrade")
	}
}

func TestKeyFilesRefused(t *testing.T) {
	dir := t.TempDir()
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p8, _ := x509.MarshalPKCS8PrivateKey(ec)
	px, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	ecPriv, ecPub := filepath.Join(dir, "ec.key"), filepath.Join(dir, "ec.pub")
	writeFile(t, ecPriv, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}), 0o600)
	writeFile(t, ecPub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: px}), 0o644)
	if _, err := LoadPrivateKey(ecPriv); !errors.Is(err, ErrKey) || !strings.Contains(err.Error(), ecPriv) {
		t.Errorf("ECDSA private key: %v", err)
	}
	if _, err := LoadPublicKey(ecPub); !errors.Is(err, ErrKey) {
		t.Errorf("ECDSA public key: %v", err)
	}
	k := newKeys(t)
	if _, err := LoadPublicKey(k.privFile); !errors.Is(err, ErrKey) {
		t.Errorf("private key as public: %v", err)
	}
	if err := os.Chmod(k.pub, 0o666); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPublicKey(k.pub); err == nil {
		t.Error("a public key others may write was accepted")
	}
}

// launchWith runs Launch in-process with exec recorded.
func launchWith(t *testing.T, dir string, env ...string) (execd string, code int, exit bool) {
	t.Helper()
	code, exit = Launch(LaunchOptions{Dir: dir, Args: []string{"kitd", "run"}, Environ: env, exec: func(path string, argv, env []string) error {
		execd = path + " " + strings.Join(argv[1:], " ") + " " + getenv(env, envLaunched)
		return errors.New("recorded")
	}})
	return execd, code, exit
}

func TestLaunchExecsCurrent(t *testing.T) {
	dir := t.TempDir()
	if got, _, exit := launchWith(t, dir); got != "" || exit {
		t.Fatalf("no state: exec %q exit %v", got, exit)
	}
	if err := saveState(dir, State{Current: "1.1.0"}); err != nil {
		t.Fatal(err)
	}
	got, _, exit := launchWith(t, dir)
	if want := binaryPath(dir, "1.1.0") + " run 1.1.0"; got != want || exit {
		t.Fatalf("exec %q exit %v, want %q (and, exec failing, the packaged binary runs)", got, exit, want)
	}
	// The packaged binary's identity is recorded at the first launch.
	if s, _ := LoadState(dir); s.Base == nil {
		t.Errorf("base not recorded: %+v", s)
	}
	// A process a launcher started never launches again.
	if got, _, _ := launchWith(t, dir, envLaunched+"=1.1.0"); got != "" {
		t.Errorf("launched twice: %q", got)
	}
	// Not under systemd: nothing happens.
	if got, _, _ := launchWith(t, ""); got != "" {
		t.Errorf("launched without a directory: %q", got)
	}
}

func TestLaunchUnreadableStateRunsPackaged(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, stateName), []byte("{not json"), 0o640)
	if got, _, exit := launchWith(t, dir); got != "" || exit {
		t.Fatalf("exec %q exit %v", got, exit)
	}
	if _, err := LoadState(dir); !errors.Is(err, ErrState) {
		t.Errorf("LoadState: %v", err)
	}
}

// A trial already started when the launcher comes up again means the
// service died with it: roll back, whatever the cause.
func TestLaunchRollsBackAStartedTrial(t *testing.T) {
	dir := t.TempDir()
	tr := &TrialRecord{JobID: "job-7", From: "1.0.0", To: "1.1.0", HealthTimeout: Duration(time.Minute), Attempts: 1, Started: time.Now()}
	if err := saveState(dir, State{Trial: tr}); err != nil {
		t.Fatal(err)
	}
	if got, _, exit := launchWith(t, dir); got != "" || exit {
		t.Fatalf("exec %q exit %v", got, exit)
	}
	s, _ := LoadState(dir)
	if s.Trial != nil || s.Outcome == nil || s.Outcome.Healthy || s.Outcome.JobID != "job-7" || !strings.Contains(s.Outcome.Reason, "stopped before it proved healthy") {
		t.Fatalf("state %+v %+v", s, s.Outcome)
	}
}

// The job document template in deploy/aws, filled in as docs/aws.md
// says, is what ParseDocument accepts; unfilled, it is refused.
func TestDeployTemplate(t *testing.T) {
	b, err := os.ReadFile("../deploy/aws/jobs/update.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseDocument(b); err == nil {
		t.Fatal("the unfilled template was accepted")
	}
	// AWS IoT replaces the placeholder with a presigned URL.
	filled := strings.NewReplacer(
		"${aws:iot:s3-presigned-url:https://s3.REGION.amazonaws.com/BUCKET/kitd/VERSION/kitd-linux-armv6}",
		"https://s3.eu-west-1.amazonaws.com/releases/kitd/1.4.0/kitd-linux-armv6?X-Amz-Signature=abc",
		`"VERSION"`, `"1.4.0"`, `"size": 0`, `"size": 10747904`,
		"SHA256", strings.Repeat("ab", 32),
		"SIGNATURE", base64.StdEncoding.EncodeToString(make([]byte, 64)),
	).Replace(string(b))
	d, err := ParseDocument([]byte(filled))
	if err != nil {
		t.Fatalf("filled template: %v\n%s", err, filled)
	}
	if d.Version != "1.4.0" || d.Size != 10747904 {
		t.Fatalf("%+v", d)
	}
	for _, name := range []string{"update-rollout.json", "update-abort.json", "presign-role-policy.json", "presign-role-trust.json"} {
		b, err := os.ReadFile(filepath.Join("../deploy/aws/jobs", name))
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
