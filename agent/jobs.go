package agent

import (
	"context"
	"errors"

	"github.com/kitd-dev/kitd/config"
	"github.com/kitd-dev/kitd/jobs"
	"github.com/kitd-dev/kitd/jobs/ops"
	"github.com/kitd-dev/kitd/publisher"
	"github.com/kitd-dev/kitd/shadow"
	"github.com/kitd-dev/kitd/telemetry"
	"github.com/kitd-dev/kitd/update"
)

// ErrRestart is returned by Run after a clean stop that a job asked for
// (kitd.restart, and kitd.update once installed): the caller exits with
// the restart code and systemd starts kitd again.
var ErrRestart = errors.New("agent: restart requested by a job")

// RequestRestart asks Run to stop cleanly and return ErrRestart. It
// returns at once; requests coalesce. Operations call it (kitd.restart;
// kitd.update after installing).
func (a *Agent) RequestRestart(reason string) {
	a.log.Info("restart requested", "by", reason)
	select {
	case a.restartc <- struct{}{}:
	default:
	}
}

// jobOperations are the operations the jobs client runs, by name. Each
// reaches the parts running now through the agent's atomics, so a reload
// that replaces the scheduler or the publisher is followed.
func (a *Agent) jobOperations() map[string]jobs.Operation {
	return map[string]jobs.Operation{
		"kitd.read-now": ops.ReadNow{
			Sensors: func() ops.Reader { return a.sched.Load().v },
			Append:  a.appendReading,
		},
		"kitd.resend": ops.Resend{
			Buffer:    func() ops.Replayer { return a.buf.Load() },
			Publisher: func() ops.Republisher { return a.pub.Load().v },
		},
		"kitd.restart":    ops.Restart{Request: a.RequestRestart},
		"kitd.set-config": ops.SetConfig{Apply: a.applyDesired, Persist: a.persistDesired},
		// Once installed, kitd.update restarts the agent and finishes the
		// execution in the new version (update/doc.go).
		update.OperationName: a.UpdateOperation(func() { a.RequestRestart(update.OperationName) }),
	}
}

// jobsFor returns the jobs client for cfg, made at the first call and
// kept across reloads (it remembers which executions this process
// started), made again only if the device changed; nil when disabled.
func (a *Agent) jobsFor(cfg *config.Config) (*jobs.Client, error) {
	if !cfg.Jobs.Enabled {
		return nil, nil
	}
	if a.jobs != nil && a.jobsDevice == cfg.Device.ID {
		return a.jobs, nil
	}
	a.jobSettings.Store(&ops.Settings{Path: cfg.Jobs.StateFile, Device: cfg.Device.ID})
	c, err := jobs.New(cfg.Jobs, jobs.Deps{Thing: cfg.Device.ID, Operations: a.jobOperations(), Log: a.deps.Log})
	if err != nil {
		return nil, err
	}
	a.jobs, a.jobsDevice = c, cfg.Device.ID
	return c, nil
}

// persistDesired keeps what kitd.set-config applied (jobs.state_file).
func (a *Agent) persistDesired(desired map[string]any) error {
	st := a.jobSettings.Load()
	if st == nil {
		return errors.New("no settings file")
	}
	return st.Merge(desired)
}

// applyJobSettings applies the persisted kitd.set-config settings over
// what runs (the config file's values and the shadow's settings), at
// start and after a reload. Each setting is applied on its own: one that
// no longer fits the config file (a sensor removed) is dropped from the
// file and logged, and the others still apply.
func (a *Agent) applyJobSettings(cfg *config.Config) {
	// Jobs ride on the MQTT connection: without a publisher (HTTPS
	// output, a kit not yet onboarded, whose device id is still unknown)
	// there is nothing to apply them to, and the file is left as it is;
	// onboarding applies them once the kit has its identity.
	if !cfg.Jobs.Enabled || a.pub.Load() == nil {
		return
	}
	// The settings file is the device's: a provisioned kit's id is its
	// identity's thing name, not the config's (empty) device.id.
	cfg, ok, err := identityFor(cfg)
	if err != nil || !ok {
		return
	}
	st := a.jobSettings.Load()
	if st == nil || st.Path != cfg.Jobs.StateFile {
		st = &ops.Settings{Path: cfg.Jobs.StateFile, Device: cfg.Device.ID}
		a.jobSettings.Store(st)
	}
	doc, err := st.Load()
	if err != nil {
		a.log.Error("jobs: set-config settings not applied", "file", cfg.Jobs.StateFile, "err", err)
		return
	}
	if len(doc) == 0 {
		return
	}
	kept := map[string]any{}
	dropped := false
	for _, l := range ops.Leaves(doc) {
		if errs := a.applyDesired(l.Doc); len(errs) > 0 {
			a.log.Warn("jobs: a persisted set-config setting no longer applies; dropped", "path", l.Path, "errors", errs)
			dropped = true
			continue
		}
		kept = ops.MergeDoc(kept, l.Doc)
	}
	a.log.Info("jobs: set-config settings applied", "file", cfg.Jobs.StateFile)
	if dropped {
		if err := st.Replace(kept); err != nil {
			a.log.Error("jobs: set-config settings file not rewritten", "err", err)
		}
	}
}

// hookJobs runs the jobs client on every connection of pub.
func (a *Agent) hookJobs(cfg *config.Config, pub *publisher.Publisher) error {
	c, err := a.jobsFor(cfg)
	if err != nil || c == nil {
		return err
	}
	pub.OnConnect(func(ctx context.Context, s *publisher.Session) { c.OnConnect(ctx, s) })
	return nil
}

// appendReading stores a reading taken by a job, like the scheduler's
// sink, and returns its seq.
func (a *Agent) appendReading(r telemetry.Reading) (uint64, error) {
	rec, err := telemetry.MarshalRecord(nil, r)
	if err != nil {
		return 0, err
	}
	return a.buf.Load().Append(rec)
}

// applyDesired is kitd.set-config: the shadow's rules over the running
// scheduler and publisher. The sensor names and the values an undo
// returns to are read from the running parts, not from a.cfg, which only
// the lifecycle lock may read.
func (a *Agent) applyDesired(desired map[string]any) map[string]string {
	st := a.shadowState()
	names := make([]string, 0, len(st.Sensors))
	for _, s := range st.Sensors {
		names = append(names, s.Name)
	}
	c := a.pub.Load()
	if c == nil {
		return map[string]string{"": "no MQTT delivery runs to apply settings to"}
	}
	return shadow.ApplyOnce(desired, names, c.v.BatchMaxReadings(), st, target{a}, a.deps.Log)
}
