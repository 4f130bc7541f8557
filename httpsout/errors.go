package httpsout

import (
	"errors"
	"fmt"
)

// ErrRejected is returned (wrapped in a RejectedError) when the server
// answers a POST with a 4xx other than 408 and 429: the message will
// never be taken as it is.
var ErrRejected = errors.New("httpsout: rejected by the server")

// RejectedError is a POST the server refused for good.
type RejectedError struct {
	Status int
	// Body is the start of the answer, for the log.
	Body string
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("httpsout: rejected by the server: %d %s", e.Status, e.Body)
}

func (e *RejectedError) Unwrap() error { return ErrRejected }
