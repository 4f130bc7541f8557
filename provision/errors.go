package provision

import (
	"errors"
	"fmt"
)

// Errors of onboarding and renewal, wrapped with what was being done.
var (
	// ErrNoReply is returned when AWS IoT (or the broker) did not answer a
	// request within the reply timeout: the kit is offline, or the claim
	// policy does not let it receive on the reply topics.
	ErrNoReply = errors.New("provision: no reply")
	// ErrThingChanged is returned when a renewal's registration names
	// another thing than the kit's: the new certificate is not used.
	ErrThingChanged = errors.New("provision: renewal registered another thing")
	// ErrNoSerial is returned when {serial} is used and no source (device
	// tree, /proc/cpuinfo, a network interface) gives one.
	ErrNoSerial = errors.New("provision: no board serial found")
)

// Errors of the identity directory.
var (
	// ErrNoIdentity is returned when provisioning.dir holds no identity
	// yet: the kit is still on its claim certificate.
	ErrNoIdentity = errors.New("provision: no identity yet")
	// ErrBadIdentity is returned when identity.pem exists but is not a
	// complete identity (thing name, certificate, matching key).
	ErrBadIdentity = errors.New("provision: identity file is not a complete identity")
)

// RejectedError is returned when AWS IoT answers a request on its
// /rejected topic. Its fields are AWS's error payload.
type RejectedError struct {
	// Op is the request: "create-from-csr" or "provision".
	Op           string
	StatusCode   int    `json:"statusCode"`
	ErrorCode    string `json:"errorCode"`
	ErrorMessage string `json:"errorMessage"`
}

func (e *RejectedError) Error() string {
	what := "AWS IoT rejected " + e.Op
	switch e.Op {
	case opProvision:
		what = "the provisioning template refused the request"
	case opCreate:
		what = "AWS IoT refused to create a certificate from the CSR"
	}
	return fmt.Sprintf("%s: %d %s: %s", what, e.StatusCode, e.ErrorCode, e.ErrorMessage)
}

// tokenRejected reports whether err says the ownership token is no
// longer good (expired after an hour, or already used): a new certificate
// is then needed, from the same key and CSR.
func tokenRejected(err error) bool {
	var r *RejectedError
	return errors.As(err, &r) && r.Op == opProvision && r.ErrorCode == "InvalidCertificateOwnershipToken"
}
