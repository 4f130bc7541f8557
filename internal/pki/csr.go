package pki

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"time"
)

// SignCSR issues a client certificate for a CSR's key with common name cn,
// valid from an hour ago until notAfter: what AWS IoT's
// CreateCertificateFromCsr does with its own CA, for the provisioning
// emulator. The CSR's signature is checked; its subject is not used.
func (ca *CA) SignCSR(csr *x509.CertificateRequest, cn string, notAfter time.Time) (*x509.Certificate, error) {
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("pki: CSR: %w", err)
	}
	tmpl := ca.leaf(cn, notAfter)
	tmpl.Subject = pkix.Name{CommonName: cn}
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, csr.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	return x509.ParseCertificate(der)
}
