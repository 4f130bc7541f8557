package alerts

import "errors"

// ErrState is returned (wrapped, with the file) when the state file
// exists but cannot be used; the evaluator then starts with nothing
// firing, and the agent logs it.
var ErrState = errors.New("alerts: state file unusable")
