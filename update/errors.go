package update

import "errors"

// Errors of keys and signatures.
var (
	// ErrNoPublicKey is returned when an update arrives and
	// update.public_key_file is not set: without a key no update is run.
	ErrNoPublicKey = errors.New("updates refused: update.public_key_file is not set")
	// ErrKey is returned when a key file holds no ed25519 key in the PEM
	// form expected ("PRIVATE KEY" PKCS#8 or "PUBLIC KEY" PKIX).
	ErrKey = errors.New("not an ed25519 key")
	// ErrBadSignature is returned when a signature does not verify
	// against the public key.
	ErrBadSignature = errors.New("signature does not verify")
	// ErrNoDir is returned when an update arrives for an agent that
	// systemd did not start: nothing would restart it into the new
	// version.
	ErrNoDir = errors.New("updates refused: kitd is not running under its systemd unit (no STATE_DIRECTORY; StateDirectory=kitd sets it)")
)

// Errors of the job document and the download.
var (
	// ErrDocument is returned when the job document lacks a field or has
	// one of the wrong form.
	ErrDocument = errors.New("invalid kitd.update job document")
	// ErrDowngrade is returned when the document's version is not newer
	// than the running one and allow_downgrade is not true.
	ErrDowngrade = errors.New("downgrade refused")
	// ErrTooLarge is returned when the server sends, or announces, more
	// bytes than the document's size.
	ErrTooLarge = errors.New("download larger than the job's size")
	// ErrSize is returned when the download ends short of size.
	ErrSize = errors.New("download size differs from the job's size")
	// ErrHash is returned when the file's sha256 differs from the job's.
	ErrHash = errors.New("sha256 mismatch")
	// ErrHTTP is returned when the server answers with a status that is
	// neither 200 nor 206.
	ErrHTTP = errors.New("download refused by server")
)

// Errors of the install state.
var (
	// ErrState is returned when the state file cannot be read or parsed.
	ErrState = errors.New("update state")
)
