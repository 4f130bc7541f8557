package shadow

import (
	"errors"
	"fmt"
)

// Errors of the shadow protocol.
var (
	// ErrTimeout is returned when the shadow service did not answer a
	// request within the request timeout.
	ErrTimeout = errors.New("shadow: no answer from the shadow service")
	// ErrConnectionLost is returned when the connection a request was made
	// on ended before the answer came (publisher.ErrConnectionLost's
	// counterpart; ErrClosed in other packages means used after Close).
	ErrConnectionLost = errors.New("shadow: connection lost")
)

// Errors of the state file.
var (
	// ErrCorruptState is wrapped by the error logged when the state file
	// cannot be parsed; the file is set aside as <state_file>.bad.
	ErrCorruptState = errors.New("shadow: corrupt state file")
)

// RejectedError is a request the shadow service refused, with AWS's code
// (400, 404, 409, 413, 429, 500...) and message.
type RejectedError struct {
	Code    int
	Message string
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("shadow: rejected %d: %s", e.Code, e.Message)
}

// codeConflict is AWS's answer to an update whose version is not the
// document's: someone else wrote first.
const codeConflict = 409
