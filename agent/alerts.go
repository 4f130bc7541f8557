package agent

import (
	"path/filepath"
	"reflect"

	"github.com/kitd-dev/kitd/alerts"
	"github.com/kitd-dev/kitd/config"
	"github.com/kitd-dev/kitd/shadow"
	"github.com/kitd-dev/kitd/telemetry"
)

// alertStateFile lives in the buffer directory: the alert state describes
// records in that buffer, and a new buffer (a new epoch) starts with
// nothing firing. The buffer ignores files that are not its own.
const alertStateFile = "alerts.json"

// startAlerts makes the evaluator; a state file it cannot use is logged
// and the rules start with nothing firing (at worst one firing message
// is sent again).
func (a *Agent) startAlerts(cfg *config.Config) {
	e, err := alerts.New(cfg.Alerts, filepath.Join(cfg.Buffer.Dir, alertStateFile), a.deps.Log)
	if err != nil {
		a.log.Error("alerts: state not restored; rules start with nothing firing", "err", err)
	}
	if len(cfg.Alerts) > 0 {
		a.restoreAlerts(e)
	}
	a.alerts.Store(e)
}

// restoreAlerts closes the window between an alert record's append and
// the state file's rename: a kill -9 there leaves the buffer ahead of the
// file, and the records still pending in the buffer say what was sent.
// One pass over the pending records at start (only with rules
// configured), looking at each one's kind byte.
func (a *Agent) restoreAlerts(e *alerts.Evaluator) {
	r := a.buf.Load().Reader(0, 0)
	n := 0
	for {
		recs, err := r.Next(1024, 1<<20)
		if err != nil {
			a.log.Error("alerts: buffer not scanned for alert records; a restart may repeat one", "err", err)
			break
		}
		if len(recs) == 0 {
			break
		}
		for _, rec := range recs {
			if !telemetry.IsAlertRecord(rec.Data) {
				continue
			}
			v, err := telemetry.ParseRecord(rec.Data)
			if err == nil && e.Restore(rec.Seq, v.Alert()) {
				n++
			}
		}
	}
	if n > 0 {
		a.log.Info("alerts: state brought up to date from the buffer", "records", n)
		if err := e.Save(); err != nil {
			a.log.Error("alerts: state not saved", "err", err)
		}
	}
}

// checkAlerts evaluates the reading just buffered at seq. Alert records go
// into the same buffer, after it, so they are delivered like readings
// (the publisher sends them first). An alert the buffer refuses is not a
// lost reading (that one is stored): it is logged, and the evaluator, its
// state unchanged, raises it again with the next reading.
func (a *Agent) checkAlerts(r telemetry.Reading, seq uint64) {
	e := a.alerts.Load()
	if e == nil {
		return
	}
	err := e.Observe(r, seq, func(as []telemetry.Alert) (uint64, error) {
		recs := make([][]byte, 0, len(as))
		for _, al := range as {
			rec, err := telemetry.MarshalAlert(nil, al)
			if err != nil {
				return 0, err
			}
			recs = append(recs, rec)
		}
		first, err := a.buf.Load().Append(recs...)
		if err != nil {
			return 0, err
		}
		for i, al := range as {
			a.log.Info("alert", "alert", al.Name, "state", al.State.String(), "sensor", al.Sensor,
				"quantity", al.Quantity, "value", al.Value, "threshold", al.Threshold, "seq", first+uint64(i))
		}
		return first, nil
	})
	if err != nil {
		a.log.Warn("alerts: alert not buffered; it is raised again with the next reading", "sensor", r.Sensor, "err", err)
	}
}

// reloadAlerts applies changed rules; a rule kept by name keeps its state.
func (a *Agent) reloadAlerts(old, cfg *config.Config) {
	if e := a.alerts.Load(); e != nil && !reflect.DeepEqual(old.Alerts, cfg.Alerts) {
		e.SetRules(cfg.Alerts)
		a.log.Info("reload: alert rules replaced", "rules", len(cfg.Alerts))
	}
}

// activeAlerts is what the shadow reports under alerts.
func (a *Agent) activeAlerts() []shadow.Alert {
	e := a.alerts.Load()
	if e == nil {
		return nil
	}
	var out []shadow.Alert
	for _, al := range e.Active() {
		out = append(out, shadow.Alert{Name: al.Name, Sensor: al.Sensor, Quantity: al.Quantity,
			Threshold: al.Threshold, Value: al.Value, Since: al.Since})
	}
	return out
}
