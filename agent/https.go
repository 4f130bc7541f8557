package agent

import (
	"context"
	"time"

	"github.com/kitd-dev/kitd/config"
	"github.com/kitd-dev/kitd/httpsout"
)

// With output: https the readings go by HTTPS POST (package httpsout) and
// there is no MQTT connection at all: no status messages, no Last Will, no
// shadow (so no remote configuration, and the shadow's report of sensors,
// buffer and alerts is not made). What stays: the buffer, the sensors, the
// alerts (posted to the same URL), the systemd status line and watchdog.

func (a *Agent) buildHTTPS(cfg *config.Config) (delivery, error) {
	s, err := httpsout.New(cfg.HTTPS, cfg.Device.ID, a.buf.Load(), a.opts.Clock, a.log)
	if err != nil {
		return delivery{}, err
	}
	return delivery{https: s}, nil
}

func (a *Agent) startHTTPS(s *httpsout.Sender) {
	a.sh.Store(nil)
	a.pub.Store(nil)
	a.https.Store(run(s, func(ctx context.Context) error { return s.Run(ctx) }, a.log, "https"))
}

// stopDelivery stops whichever output runs (both are nil-safe).
func (a *Agent) stopDelivery() {
	a.pub.Load().stop()
	a.https.Load().stop()
}

// deliveryProgress is the running output's loop progress, for the
// watchdog.
func (a *Agent) deliveryProgress() time.Time {
	if c := a.https.Load(); c != nil {
		return c.v.Progress()
	}
	if c := a.pub.Load(); c != nil {
		return c.v.Progress()
	}
	return time.Now() // between a reload's stop and start
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
