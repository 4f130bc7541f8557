package agent

import (
	"context"

	"github.com/kitd-dev/kitd/jobs"
	"github.com/kitd-dev/kitd/publisher"
	"github.com/kitd-dev/kitd/update"
)

// The agent's side of a self-update (update/doc.go): a new version on
// trial proves health by its first broker connection, which comes after
// the config was loaded, the buffer opened and the sensors scheduled (Run
// starts them first).

// updateRunning tells the launcher that the agent is running, so a
// failure from here on is "never connected" rather than "crashed at
// start".
func (a *Agent) updateRunning() {
	a.deps.UpdateTrial.Running()
}

// confirmUpdateOnConnect confirms a trial at pub's first connection.
// OnConnect hooks run in their own goroutine: Confirm's fsyncs do not
// hold the connection up.
func (a *Agent) confirmUpdateOnConnect(pub *publisher.Publisher) {
	t := a.deps.UpdateTrial
	if t == nil {
		return
	}
	pub.OnConnect(func(context.Context, *publisher.Session) {
		_ = t.Confirm() // logs its own failure; the deadline then rolls back
	})
}

// UpdateOperation is the kitd.update job operation for the Jobs client.
// restart must stop the agent cleanly and make `kitd run` exit with a
// status systemd restarts (Restart=on-failure: not 0, not 2); it must
// return at once, the stop following the operation's return. Each
// execution reads the update section of the config in effect, so a
// reload that sets update.public_key_file applies to the next job.
func (a *Agent) UpdateOperation(restart func()) jobs.Operation {
	return updateOp{a: a, restart: restart}
}

type updateOp struct {
	a       *Agent
	restart func()
}

func (u updateOp) Run(ctx context.Context, e *jobs.Execution) jobs.Result {
	a := u.a
	a.lifecycle.Lock()
	cfg := a.cfg.Update
	a.lifecycle.Unlock()
	op, err := update.NewOperation(update.Deps{
		Config: cfg, Dir: a.deps.UpdateDir, Version: a.deps.Version,
		Restart: u.restart, Trial: a.deps.UpdateTrial, Log: a.deps.Log,
	})
	if err != nil {
		return jobs.Result{Status: jobs.Failed, Details: map[string]string{"reason": err.Error()}}
	}
	return op.Run(ctx, e)
}
