package ops

import (
	"context"
	"time"

	"github.com/kitd-dev/kitd/jobs"
)

// phaseRestarting is the statusDetails the restart leaves on the
// execution: the next process, resuming it, knows the restart happened.
const (
	detailPhase      = "phase"
	phaseRestarting  = "restarting"
	detailRestarting = "restart_requested_at"
)

// Restart is kitd.restart: a clean restart. It reports phase=restarting
// (so the state lives with the execution, not on the kit), asks the agent
// to stop cleanly and exit with its restart code (systemd's
// Restart=on-failure starts it again; see the README), and leaves the
// execution IN_PROGRESS. The next process, once connected, resumes the
// execution and reports SUCCEEDED. If the restart could not be recorded
// first, nothing is stopped and the job is FAILED. A resumed execution
// without the phase (the agent was killed before it got that far) is
// restarted again.
type Restart struct {
	// Request asks the agent to stop cleanly and exit for a restart; it
	// returns at once.
	Request func(reason string)
	// Now is the clock for the details (default time.Now).
	Now func() time.Time
}

// Run implements jobs.Operation.
func (op Restart) Run(ctx context.Context, e *jobs.Execution) jobs.Result {
	if err := jobs.DecodeParams(e.Document, &struct{}{}); err != nil {
		return reject(err.Error())
	}
	if e.Resumed && e.StatusDetails[detailPhase] == phaseRestarting {
		d := map[string]string{"restarted": "true"}
		if at := e.StatusDetails[detailRestarting]; at != "" {
			d[detailRestarting] = at
		}
		return jobs.Result{Status: jobs.Succeeded, Details: d}
	}
	now := time.Now
	if op.Now != nil {
		now = op.Now
	}
	at := now().UTC().Format(time.RFC3339)
	if err := e.Progress(ctx, map[string]string{detailPhase: phaseRestarting, detailRestarting: at}); err != nil {
		return fail("could not record the restart with the service, so it was not made: " + err.Error())
	}
	op.Request("job " + e.JobID)
	return jobs.Result{} // IN_PROGRESS until the next process resumes it
}
