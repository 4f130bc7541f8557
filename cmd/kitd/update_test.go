package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// releaseKeys writes an ed25519 pair in the PEM forms openssl writes.
func releaseKeys(t *testing.T) (priv, pub string) {
	t.Helper()
	pk, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p8, _ := x509.MarshalPKCS8PrivateKey(sk)
	px, _ := x509.MarshalPKIXPublicKey(pk)
	priv, pub = filepath.Join(dir, "release.key"), filepath.Join(dir, "release.pub")
	if err := os.WriteFile(priv, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: px}), 0o644); err != nil {
		t.Fatal(err)
	}
	return priv, pub
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func TestUpdateSignVerify(t *testing.T) {
	priv, pub := releaseKeys(t)
	_, otherPub := releaseKeys(t)
	file := filepath.Join(t.TempDir(), "kitd")
	if err := os.WriteFile(file, []byte("a kitd release"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := kitd(t, nil, nil, "update", "sign", "-key", priv, file)
	if r.code != 0 || !strings.Contains(r.stdout, "size: 14\n") || !strings.Contains(r.stdout, "sha256: ") {
		t.Fatalf("sign: %+v", r)
	}
	sig := lastLine(r.stdout)
	if b, err := base64.StdEncoding.DecodeString(sig); err != nil || len(b) != ed25519.SignatureSize {
		t.Fatalf("last line %q is not a base64 ed25519 signature (%v)", sig, err)
	}
	// --key works as well as -key.
	if r := kitd(t, nil, nil, "update", "sign", "--key", priv, file); r.code != 0 || lastLine(r.stdout) != sig {
		t.Fatalf("sign --key: %+v", r)
	}

	if r := kitd(t, nil, nil, "update", "verify", "-pub", pub, "-sig", sig, file); r.code != 0 {
		t.Fatalf("verify: %+v", r)
	}
	// The signature in a file, base64 or raw.
	sigFile := filepath.Join(t.TempDir(), "kitd.sig")
	raw, _ := base64.StdEncoding.DecodeString(sig)
	for _, content := range [][]byte{[]byte(sig + "\n"), raw} {
		if err := os.WriteFile(sigFile, content, 0o644); err != nil {
			t.Fatal(err)
		}
		if r := kitd(t, nil, nil, "update", "verify", "-pub", pub, "-sig", sigFile, file); r.code != 0 {
			t.Fatalf("verify -sig FILE: %+v", r)
		}
	}

	// Not verified: exit 1.
	if r := kitd(t, nil, nil, "update", "verify", "-pub", otherPub, "-sig", sig, file); r.code != 1 || !strings.Contains(r.stderr, "signature does not verify") {
		t.Errorf("another key: %+v", r)
	}
	if err := os.WriteFile(file, []byte("a kitd releasE"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := kitd(t, nil, nil, "update", "verify", "-pub", pub, "-sig", sig, file); r.code != 1 {
		t.Errorf("changed file: %+v", r)
	}

	// Usage: exit 2, naming the flag.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"update", "sign", file}, "-key: required"},
		{[]string{"update", "sign", "-key", priv}, "exactly one FILE"},
		{[]string{"update", "sign", "-key", pub, file}, "-key:"},
		{[]string{"update", "sign", "-nope", file}, "-nope"},
		{[]string{"update", "verify", "-pub", pub, file}, "-sig: required"},
		{[]string{"update", "verify", "-sig", sig, file}, "-pub: required"},
		{[]string{"update", "verify", "-pub", priv, "-sig", sig, file}, "-pub:"},
		{[]string{"update", "verify", "-pub", pub, "-sig", "not-a-signature", file}, "-sig:"},
	} {
		if r := kitd(t, nil, nil, c.args...); r.code != 2 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("kitd %v: exit %d, stderr %q; want 2 and %q", c.args, r.code, r.stderr, c.want)
		}
	}

	// A private key others may read is refused.
	if err := os.Chmod(priv, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := kitd(t, nil, nil, "update", "sign", "-key", priv, file); r.code != 2 || !strings.Contains(r.stderr, priv) {
		t.Errorf("world-readable key: %+v", r)
	}
}
