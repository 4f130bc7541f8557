package publisher

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/kitd-dev/kitd/internal/safefile"
)

// alpnAWS is the ALPN protocol AWS IoT Core requires for MQTT over port 443.
const alpnAWS = "x-amzn-mqtt-ca"

// maxPEMBytes bounds each TLS file: a CA bundle of every public root is
// about 200 KiB, a certificate chain a few KiB. A larger file is a
// mistake (or /dev/zero) and must not be read into memory.
const maxPEMBytes = 1 << 20

// The TLS files are regular files no one but their owner may change: a
// CA file writable by a group lets its members make the kit trust their
// own server, a writable certificate or key lets them swap its identity.
// The key, in addition, must not be readable by others.
var (
	publicPEM = safefile.Rules{Max: maxPEMBytes, Trusted: true}
	secretPEM = safefile.Rules{Max: maxPEMBytes, Trusted: true, Secret: true}
)

// tlsFiles is what ca_file, cert_file and key_file hold, parsed.
type tlsFiles struct {
	roots *x509.CertPool
	cert  tls.Certificate
	leaf  *x509.Certificate
}

// loadTLSFiles reads and checks the three files. With noClient (a broker
// that takes a user name and password instead of a client certificate)
// cert_file and key_file may both be empty: then the TLS connection has
// no client certificate. Errors name the field and the file; they never
// quote the key (its parse errors are replaced by a fixed message rather
// than passed through).
func loadTLSFiles(caFile, certFile, keyFile string, noClient bool) (*tlsFiles, error) {
	var errs []error
	f := &tlsFiles{}
	if caFile == "" {
		errs = append(errs, errors.New("ca_file: required for a TLS broker"))
	} else if roots, err := loadCA(caFile); err != nil {
		errs = append(errs, fmt.Errorf("ca_file: %w", err))
	} else {
		f.roots = roots
	}
	if noClient && certFile == "" && keyFile == "" {
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
		return f, nil
	}
	var chain [][]byte
	if certFile == "" {
		errs = append(errs, errors.New("cert_file: required for a TLS broker"))
	} else if ders, leaf, err := loadCert(certFile); err != nil {
		errs = append(errs, fmt.Errorf("cert_file: %w", err))
	} else {
		chain, f.leaf = ders, leaf
	}
	var key crypto.Signer
	if keyFile == "" {
		errs = append(errs, errors.New("key_file: required for a TLS broker"))
	} else if k, err := loadKey(keyFile); err != nil {
		errs = append(errs, fmt.Errorf("key_file: %w", err))
	} else {
		key = k
	}
	if f.leaf != nil && key != nil {
		pub, ok := f.leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
		if !ok || !pub.Equal(key.Public()) {
			errs = append(errs, fmt.Errorf("key_file: %s does not match the certificate in %s", keyFile, certFile))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	f.cert = tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: f.leaf}
	return f, nil
}

// config is the client side of mutual TLS to host.
func (f *tlsFiles) config(host string, alpn bool) *tls.Config {
	c := &tls.Config{
		MinVersion: tls.VersionTLS12,
		RootCAs:    f.roots,
		// Set explicitly so SNI goes out even when the dial address is
		// rewritten (AWS IoT on 443 routes by SNI).
		ServerName: host,
	}
	if f.leaf != nil {
		c.Certificates = []tls.Certificate{f.cert}
	}
	if alpn {
		c.NextProtos = []string{alpnAWS}
	}
	return c
}

func loadCA(path string) (*x509.CertPool, error) {
	data, err := safefile.Read(path, publicPEM)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", path)
	}
	return pool, nil
}

func loadCert(path string) ([][]byte, *x509.Certificate, error) {
	data, err := safefile.Read(path, publicPEM)
	if err != nil {
		return nil, nil, err
	}
	var ders [][]byte
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type == "CERTIFICATE" {
			ders = append(ders, block.Bytes)
		}
	}
	if len(ders) == 0 {
		return nil, nil, fmt.Errorf("%s: no PEM certificate in it", path)
	}
	leaf, err := x509.ParseCertificate(ders[0])
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return ders, leaf, nil
}

// loadKey refuses a key others may read, or anyone but its owner may
// write, before parsing it, so a misconfigured kit fails the same way
// whoever runs the check.
func loadKey(path string) (crypto.Signer, error) {
	data, err := safefile.Read(path, secretPEM)
	if err != nil {
		return nil, err
	}
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, fmt.Errorf("%s: no PEM private key in it", path)
		}
		if !strings.HasSuffix(block.Type, "PRIVATE KEY") {
			continue
		}
		if k := parseKey(block.Bytes); k != nil {
			return k, nil
		}
		// The parser's error is not passed on: it may describe the bytes.
		return nil, fmt.Errorf("%s: %s block is not a PKCS#1, PKCS#8 or EC private key", path, block.Type)
	}
}

func parseKey(der []byte) crypto.Signer {
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		switch k := k.(type) {
		case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
			return k.(crypto.Signer)
		}
		return nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k
	}
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k
	}
	return nil
}
