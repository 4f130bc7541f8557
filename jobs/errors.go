package jobs

import (
	"errors"
	"fmt"
)

// Errors of the protocol with the Jobs service.
var (
	// ErrTimeout is returned when the service did not answer a request
	// within the request timeout (a lost message or a dead link).
	ErrTimeout = errors.New("jobs: no answer from the service")
	// ErrNotInProgress is returned by Execution.Progress when the
	// execution is no longer IN_PROGRESS on the service (cancelled, timed
	// out, removed): the operation should stop, its result will not be
	// recorded.
	ErrNotInProgress = errors.New("jobs: the execution is no longer in progress on the service")
)

// Errors of New.
var (
	// ErrNoThing is returned when the thing name is empty.
	ErrNoThing = errors.New("jobs: no thing name")
	// ErrBadOperationName is returned when an operation is registered
	// under an empty name or with a nil Operation.
	ErrBadOperationName = errors.New("jobs: bad operation registration")
)

// RejectedError is returned when the service answered a request on its
// /rejected topic. Code is AWS's error code: InvalidTopic, InvalidJson,
// InvalidRequest, InvalidStateTransition, ResourceNotFound,
// VersionMismatch, InternalError, RequestThrottled, TerminalStateReached.
type RejectedError struct {
	Code, Message string
	// State is the execution's state, sent with VersionMismatch and
	// InvalidStateTransition.
	State *ExecutionState
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("jobs: rejected: %s: %s", e.Code, e.Message)
}

// The codes the client acts on.
const (
	CodeVersionMismatch        = "VersionMismatch"
	CodeInvalidStateTransition = "InvalidStateTransition"
	CodeTerminalStateReached   = "TerminalStateReached"
	CodeResourceNotFound       = "ResourceNotFound"
)

// isCode reports whether err is a rejection with one of codes.
func isCode(err error, codes ...string) bool {
	var r *RejectedError
	if !errors.As(err, &r) {
		return false
	}
	for _, c := range codes {
		if r.Code == c {
			return true
		}
	}
	return false
}
