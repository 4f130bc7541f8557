package httpsout

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/kitd-dev/kitd/internal/safefile"
)

// The same rules as the MQTT publisher's TLS files: no one but the owner
// may change them, and secrets are not readable by others.
var (
	publicPEM = safefile.Rules{Max: 1 << 20, Trusted: true}
	secretPEM = safefile.Rules{Max: 1 << 20, Trusted: true, Secret: true}
	// An API key is a short token; group-readable (0640) is fine.
	secretKey = safefile.Rules{Max: 4 << 10, Trusted: true, Secret: true}
)

// auth is what the files hold, parsed.
type auth struct {
	tls    *tls.Config
	apiKey string
}

// load reads every file the section names; errors name the field and the
// file, never their content.
func (c Config) load() (*auth, error) {
	var errs []error
	a := &auth{tls: &tls.Config{MinVersion: tls.VersionTLS12}}
	if c.CAFile != "" {
		b, err := safefile.Read(c.CAFile, publicPEM)
		if err != nil {
			errs = append(errs, fmt.Errorf("ca_file: %w", err))
		} else {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(b) {
				errs = append(errs, fmt.Errorf("ca_file: %s holds no PEM certificate", c.CAFile))
			}
			a.tls.RootCAs = pool
		}
	}
	if c.CertFile != "" && c.KeyFile != "" {
		cert, cerr := safefile.Read(c.CertFile, publicPEM)
		if cerr != nil {
			errs = append(errs, fmt.Errorf("cert_file: %w", cerr))
		}
		key, kerr := safefile.Read(c.KeyFile, secretPEM)
		if kerr != nil {
			errs = append(errs, fmt.Errorf("key_file: %w", kerr))
		}
		if cerr == nil && kerr == nil {
			pair, err := tls.X509KeyPair(cert, key)
			if err != nil {
				// tls's message may quote neither file, but say only what
				// is wrong, in our words.
				errs = append(errs, fmt.Errorf("key_file: %s and cert_file %s are not a matching PEM certificate and private key", c.KeyFile, c.CertFile))
			} else {
				a.tls.Certificates = []tls.Certificate{pair}
			}
		}
	}
	if c.APIKeyFile != "" {
		b, err := safefile.Read(c.APIKeyFile, secretKey)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("api_key_file: %w", err))
		default:
			k := string(bytes.TrimSpace(b))
			if k == "" || bytes.ContainsAny([]byte(k), "\r\n\x00") {
				errs = append(errs, fmt.Errorf("api_key_file: %s must hold the key on one line", c.APIKeyFile))
			}
			a.apiKey = k
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return a, nil
}
