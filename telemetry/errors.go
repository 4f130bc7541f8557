package telemetry

import "errors"

// ErrRecord is returned when stored bytes are not a valid record.
var ErrRecord = errors.New("telemetry: malformed record")
