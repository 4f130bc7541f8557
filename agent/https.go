package agent

import (
	"github.com/kitd-dev/kitd/config"
	"github.com/kitd-dev/kitd/httpsout"
)

// With output: https the readings go by HTTPS POST (package httpsout) and
// there is no MQTT connection at all: no status messages, no Last Will, no
// shadow (so no remote configuration, and the shadow's report of sensors,
// buffer and alerts is not made). What stays: the buffer, the sensors, the
// alerts (posted to the same URL), the systemd status line and watchdog.

func (a *Agent) buildHTTPS(cfg *config.Config) (delivery, error) {
	s, err := httpsout.New(cfg.HTTPS, httpsout.Deps{Device: cfg.Device.ID, Buffer: a.buf.Load(), Clock: a.deps.Clock, Log: a.deps.Log})
	if err != nil {
		return delivery{}, err
	}
	return delivery{https: s}, nil
}

func (a *Agent) startHTTPS(s *httpsout.Sender) {
	a.sh.Store(nil)
	a.pub.Store(nil)
	a.https.Store(run(s, a.log, "https"))
}

// stopDelivery stops whichever output runs (both are nil-safe).
func (a *Agent) stopDelivery() {
	a.pub.Load().stop()
	a.https.Load().stop()
}

// httpsStats fills the status line's figures from the HTTPS sender:
// "connected" is the last POST succeeding.
func (a *Agent) httpsStats(s *Stats) {
	c := a.https.Load()
	if c == nil {
		return
	}
	h := c.v.Stats()
	s.Connected, s.Delivered, s.LastPublishError = h.OK, h.Delivered, h.LastError
}
