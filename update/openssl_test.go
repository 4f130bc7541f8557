//go:build systemtools

package update

import (
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The release tools and the agent interoperate with openssl both ways:
// keys from `openssl genpkey`/`openssl pkey -pubout`, signatures from
// `openssl pkeyutl -sign -rawin`, and kitd's signatures verified by
// `openssl pkeyutl -verify -rawin`.
func TestOpenSSLInterop(t *testing.T) {
	dir := t.TempDir()
	priv, pub := filepath.Join(dir, "release.key"), filepath.Join(dir, "release.pub")
	file, sigFile := filepath.Join(dir, "kitd"), filepath.Join(dir, "kitd.sig")
	openssl := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("openssl", args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, out)
		}
	}
	openssl("genpkey", "-algorithm", "ed25519", "-out", priv)
	if err := os.Chmod(priv, 0o600); err != nil {
		t.Fatal(err)
	}
	openssl("pkey", "-in", priv, "-pubout", "-out", pub)
	if err := os.WriteFile(file, []byte("a kitd release, signed by openssl"), 0o644); err != nil {
		t.Fatal(err)
	}

	// openssl signs, kitd verifies.
	openssl("pkeyutl", "-sign", "-rawin", "-inkey", priv, "-in", file, "-out", sigFile)
	raw, err := os.ReadFile(sigFile)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := LoadPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyFile(pk, raw, file); err != nil {
		t.Fatalf("openssl's signature: %v", err)
	}

	// kitd signs with openssl's key, openssl verifies.
	sk, err := LoadPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := SignFile(sk, file)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := base64.StdEncoding.DecodeString(sig)
	if string(b) != string(raw) {
		t.Errorf("kitd's signature differs from openssl's (ed25519 is deterministic)")
	}
	if err := os.WriteFile(sigFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	openssl("pkeyutl", "-verify", "-rawin", "-pubin", "-inkey", pub, "-in", file, "-sigfile", sigFile)

	// A changed file fails openssl's check too.
	if err := os.WriteFile(file, []byte("a kitd release, signed by opensslX"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("openssl", "pkeyutl", "-verify", "-rawin", "-pubin", "-inkey", pub, "-in", file, "-sigfile", sigFile).Run(); err == nil {
		t.Error("openssl verified a changed file")
	}
	if err := VerifyFile(pk, raw, file); err == nil {
		t.Error("kitd verified a changed file")
	}
}
