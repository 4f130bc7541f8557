package agent

import (
	"fmt"
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
	e, err := alerts.New(cfg.Alerts, filepath.Join(cfg.Buffer.Dir, alertStateFile), a.log)
	if err != nil {
		a.log.Error("alerts: state not restored; rules start with nothing firing", "err", err)
	}
	a.alerts.Store(e)
}

// checkAlerts evaluates the reading just buffered at seq. Alert records go
// into the same buffer, after it, so they are delivered like readings
// (the publisher sends them first).
func (a *Agent) checkAlerts(r telemetry.Reading, seq uint64) error {
	e := a.alerts.Load()
	if e == nil {
		return nil
	}
	err := e.Observe(r, seq, func(as []telemetry.Alert) error {
		recs := make([][]byte, 0, len(as))
		for _, al := range as {
			rec, err := telemetry.MarshalAlert(nil, al)
			if err != nil {
				return err
			}
			recs = append(recs, rec)
			a.log.Info("alert", "alert", al.Name, "state", al.State.String(), "sensor", al.Sensor,
				"quantity", al.Quantity, "value", al.Value, "threshold", al.Threshold)
		}
		_, err := a.buf.Load().Append(recs...)
		return err
	})
	if err != nil {
		return fmt.Errorf("alerts: %w", err)
	}
	return nil
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
