package jobs

import (
	"context"
	"encoding/json"
)

// Status is a job execution's status as AWS IoT Jobs names it.
type Status string

// The statuses a kit reports.
const (
	InProgress Status = "IN_PROGRESS"
	Succeeded  Status = "SUCCEEDED"
	Failed     Status = "FAILED"
	Rejected   Status = "REJECTED"
)

// Execution is one job execution handed to an Operation.
type Execution struct {
	JobID string
	// Document is the whole job document; its "operation" field chose the
	// Operation.
	Document json.RawMessage
	// Resumed is true when the execution was already IN_PROGRESS when this
	// agent process received it (it was started before a restart).
	Resumed bool
	// StatusDetails are the details last reported for the execution.
	StatusDetails map[string]string
	// Progress reports details while the execution stays IN_PROGRESS.
	Progress func(ctx context.Context, details map[string]string) error
}

// Result ends an execution. Status "" leaves it IN_PROGRESS: the operation
// has arranged a restart and finishes the execution when it is resumed.
type Result struct {
	Status  Status
	Details map[string]string
}

// Operation runs one kind of job ("kitd.update", "kitd.read-now", ...).
type Operation interface {
	Run(ctx context.Context, e *Execution) Result
}
