package update

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"os"

	"github.com/kitd-dev/kitd/internal/safefile"
)

// keyFileMax bounds a key file: an ed25519 PEM is about 120 bytes.
const keyFileMax = 16 << 10

// LoadPrivateKey reads an ed25519 private key in the PEM form
// `openssl genpkey -algorithm ed25519` writes (PKCS#8, "PRIVATE KEY").
// The file is refused when others may read it.
func LoadPrivateKey(path string) (ed25519.PrivateKey, error) {
	b, err := safefile.Read(path, safefile.Rules{Max: keyFileMax, Secret: true})
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s: %w: want a PEM \"PRIVATE KEY\" block (openssl genpkey -algorithm ed25519)", path, ErrKey)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", path, ErrKey, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: %w: it holds a %T", path, ErrKey, k)
	}
	return priv, nil
}

// LoadPublicKey reads an ed25519 public key in the PEM form `openssl pkey
// -pubout` writes (PKIX, "PUBLIC KEY"). Whoever can write the file chooses
// what the kit runs, so it is refused when its group or others may write
// it.
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	b, err := safefile.Read(path, safefile.Rules{Max: keyFileMax, Trusted: true})
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("%s: %w: want a PEM \"PUBLIC KEY\" block (openssl pkey -pubout)", path, ErrKey)
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", path, ErrKey, err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%s: %w: it holds a %T", path, ErrKey, k)
	}
	return pub, nil
}

// SignFile signs the bytes of the file at path (pure Ed25519 over the
// whole message, what `openssl pkeyutl -sign -rawin` computes) and returns
// the signature in standard base64.
func SignFile(priv ed25519.PrivateKey, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(ed25519.Sign(priv, b)), nil
}

// DecodeSignature parses a base64 signature (standard alphabet, padding
// and surrounding white space allowed, as `base64` and openssl print it).
func DecodeSignature(s string) ([]byte, error) {
	sig, err := base64.StdEncoding.DecodeString(trimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("signature: not base64: %v", err)
	}
	if len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("signature: %d bytes, an ed25519 signature has %d", len(sig), ed25519.SignatureSize)
	}
	return sig, nil
}

// VerifyFile checks sig against the bytes of the file at path; it returns
// nil or an error wrapping ErrBadSignature.
func VerifyFile(pub ed25519.PublicKey, sig []byte, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return verifyReader(pub, sig, f, path)
}

// verifyReader reads the whole message: pure Ed25519 (what openssl
// -rawin signs) takes the message whole, not a digest. A 20 MB binary
// costs 20 MB of memory for the moment of the check, then it is garbage.
func verifyReader(pub ed25519.PublicKey, sig []byte, r io.Reader, name string) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if !ed25519.Verify(pub, b, sig) {
		return fmt.Errorf("%s: %w", name, ErrBadSignature)
	}
	return nil
}

func trimSpace(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ' ', '\t', '\n', '\r':
		default:
			out = append(out, s[i])
		}
	}
	return string(out)
}
