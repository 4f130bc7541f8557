package provision

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/kitd-dev/kitd/internal/safefile"
	"github.com/kitd-dev/kitd/telemetry"
)

// File names under Config.Dir (doc.go describes them).
const (
	identityFile = "identity.pem"
	previousFile = "previous.pem"
	pendingFile  = "pending.pem"
)

// PEM block types of kitd's own headers.
const (
	blockIdentity = "KITD IDENTITY"
	blockPending  = "KITD PENDING"
)

// maxStateBytes bounds each state file: a certificate, a key, a CSR and a
// token are a few KiB.
const maxStateBytes = 64 << 10

// secretFile: the state files hold a private key; 0640 lets the service's
// group read it, never others.
var secretFile = safefile.Rules{Max: maxStateBytes, Trusted: true, Secret: true}

// fileMode is what every state file is written with.
const fileMode = 0o640

// Identity is the identity in effect: the kit's own from
// provisioning.dir, or the claim certificate before onboarding.
type Identity struct {
	// ThingName is the AWS IoT thing name (the device id); "" for the
	// claim identity.
	ThingName string
	// CertificateID is AWS IoT's id of the certificate ("" for the claim).
	CertificateID string
	// CertFile and KeyFile are what mqtt.cert_file and mqtt.key_file
	// become: both identity.pem for the kit's own identity.
	CertFile, KeyFile string
	// Claim is true before onboarding.
	Claim bool
	// Serial is the certificate's serial number (hex) and NotAfter its
	// expiry.
	Serial   string
	NotAfter time.Time
	// PreviousNotAfter is the expiry of the certificate a renewal
	// replaced, while it is kept (until the new one has connected).
	PreviousNotAfter time.Time
}

// Current returns the identity in effect under c: the kit's own if
// c.Dir holds one, else the claim certificate. A broken identity file is
// an error naming it.
func Current(c Config) (Identity, error) {
	id, err := Load(c.Dir)
	if err == nil || !errors.Is(err, ErrNoIdentity) {
		return id, err
	}
	cert, err := readCert(c.ClaimCertFile)
	if err != nil {
		return Identity{}, fmt.Errorf("claim_cert_file: %w", err)
	}
	return Identity{CertFile: c.ClaimCertFile, KeyFile: c.ClaimKeyFile, Claim: true,
		Serial: cert.SerialNumber.Text(16), NotAfter: cert.NotAfter}, nil
}

// Load reads the kit's own identity from dir; ErrNoIdentity if there is
// none yet.
func Load(dir string) (Identity, error) {
	path := filepath.Join(dir, identityFile)
	s, err := readState(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Identity{}, ErrNoIdentity
	}
	if err != nil {
		return Identity{}, err
	}
	id, err := s.identity(path)
	if err != nil {
		return Identity{}, err
	}
	if prev, err := readState(filepath.Join(dir, previousFile)); err == nil && prev.cert != nil {
		id.PreviousNotAfter = prev.cert.NotAfter
	}
	return id, nil
}

// state is one of kitd's PEM state files, parsed: a header block, then
// any of a CSR, a key and a certificate.
type state struct {
	headers map[string]string
	csr     []byte // DER
	key     crypto.Signer
	keyDER  []byte // PKCS#8
	cert    *x509.Certificate
}

func (s *state) identity(path string) (Identity, error) {
	thing := s.headers["Thing-Name"]
	switch {
	case s.cert == nil || s.key == nil:
		return Identity{}, fmt.Errorf("%s: %w: certificate or key missing", path, ErrBadIdentity)
	case telemetry.CheckDevice(thing) != nil:
		return Identity{}, fmt.Errorf("%s: %w: thing name %q", path, ErrBadIdentity, thing)
	case !samePublic(s.cert, s.key):
		return Identity{}, fmt.Errorf("%s: %w: the key does not match the certificate", path, ErrBadIdentity)
	}
	return Identity{
		ThingName: thing, CertificateID: s.headers["Certificate-Id"],
		CertFile: path, KeyFile: path,
		Serial: s.cert.SerialNumber.Text(16), NotAfter: s.cert.NotAfter,
	}, nil
}

func samePublic(cert *x509.Certificate, key crypto.Signer) bool {
	pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(key.Public())
}

// readState reads and parses a state file. Parse errors never quote the
// file (it holds a key).
func readState(path string) (*state, error) {
	data, err := safefile.Read(path, secretFile)
	if err != nil {
		return nil, err
	}
	s := &state{headers: map[string]string{}}
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		switch b.Type {
		case blockIdentity, blockPending:
			s.headers = b.Headers
		case "CERTIFICATE REQUEST":
			s.csr = b.Bytes
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			signer, ok := k.(crypto.Signer)
			if err != nil || !ok {
				return nil, fmt.Errorf("%s: the private key does not parse", path)
			}
			s.key, s.keyDER = signer, b.Bytes
		case "CERTIFICATE":
			if s.cert != nil {
				continue // the leaf comes first
			}
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%s: certificate: %w", path, err)
			}
			s.cert = c
		}
	}
	return s, nil
}

// encode is the file form of s; typ is its header block's type.
func (s *state) encode(typ string) []byte {
	var out []byte
	out = append(out, pem.EncodeToMemory(&pem.Block{Type: typ, Headers: s.headers})...)
	if s.cert != nil {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.cert.Raw})...)
	}
	if s.csr != nil {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: s.csr})...)
	}
	if s.keyDER != nil {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: s.keyDER})...)
	}
	return out
}

// writeAtomic replaces dir/name with data so that a crash at any moment
// leaves the old file or the new one, never a mix: a temporary file in
// the same directory, written and fsynced, renamed over the name, then
// the directory fsynced so the rename itself survives a power cut. The
// file is 0640 from its creation: the key is never readable by others,
// not even for a moment.
func writeAtomic(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return fmt.Errorf("provision: %w", err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// CreateTemp makes 0600; the service's group may read it (0640).
	if err := f.Chmod(fileMode); err != nil {
		return fmt.Errorf("provision: %w", err)
	}
	sameOwner(tmp, dir)
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("provision: write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("provision: fsync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("provision: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("provision: %w", err)
	}
	ok = true
	return syncDir(dir)
}

// remove deletes dir/name (if present) and makes the deletion durable.
func remove(dir, name string) error {
	if err := os.Remove(filepath.Join(dir, name)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("provision: %w", err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("provision: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("provision: fsync %s: %w", dir, err)
	}
	return nil
}

// ensureDir makes dir (0750: the service's group may look in it).
func ensureDir(dir string) error {
	_, statErr := os.Stat(dir)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("provision: dir: %w", err)
	}
	if statErr != nil {
		sameOwner(dir, filepath.Dir(dir))
	}
	return nil
}

// sameOwner gives path the owner of ref when running as root: `sudo kitd
// provision` must leave files the service (user kitd, owner of its state
// directory) can read and later replace. Best effort: without root the
// files are the caller's already.
func sameOwner(path, ref string) {
	if os.Geteuid() != 0 {
		return
	}
	st, err := os.Stat(ref)
	if err != nil {
		return
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		_ = os.Chown(path, int(sys.Uid), int(sys.Gid))
	}
}

func readCert(path string) (*x509.Certificate, error) {
	data, err := safefile.Read(path, safefile.Rules{Max: maxStateBytes, Trusted: true})
	if err != nil {
		return nil, err
	}
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, fmt.Errorf("%s: no PEM certificate in it", path)
		}
		if b.Type == "CERTIFICATE" {
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			return c, nil
		}
	}
}

// sanitizeHeader keeps a value that came from the network from breaking
// the PEM header it is stored in.
func sanitizeHeader(v string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, v)
}

// CertInfo reads a PEM certificate file's serial (hex) and expiry, for
// `kitd identity` on a kit whose certificate is configured by hand.
func CertInfo(path string) (serial string, notAfter time.Time, err error) {
	c, err := readCert(path)
	if err != nil {
		return "", time.Time{}, err
	}
	return c.SerialNumber.Text(16), c.NotAfter, nil
}
