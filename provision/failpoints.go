package provision

// Failpoints name the gaps between onboarding's durable steps, like
// buffer/failpoints.go: a crash may fall into any of them, and the tests
// stop there and start again as a new process would.
const (
	FPAfterKey         = "afterKey"         // pending.pem holds the new key and CSR
	FPAfterCertificate = "afterCertificate" // pending.pem holds the certificate and token too
	FPBeforeIdentity   = "beforeIdentity"   // RegisterThing accepted, identity.pem not yet written
	FPAfterIdentity    = "afterIdentity"    // identity.pem written, pending.pem not yet removed
)
