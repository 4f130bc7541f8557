// Package demo is `kitd demo`: the whole pipeline on an embedded default.
// An in-process MQTT broker with a throwaway PKI stands in for AWS IoT, a
// shadow emulator for the shadow service, simulated sensors for hardware;
// the agent itself is the real one, connecting over mutual TLS. Nothing
// here runs unless `kitd demo` does, and the release binaries (-tags
// kitd_nodemo) leave all of it out: the broker, the emulators and the PKI
// helper, so `kitd run` carries neither their code nor their package
// initialisation (demo_none.go).
package demo

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/kitd-dev/kitd/sensors"
	"github.com/kitd-dev/kitd/shadow"
	"github.com/kitd-dev/kitd/telemetry"
)

// Device is the demo kit's id.
const Device = "demo-kit" // device.id in configs/demo.yaml

// Options configure a demo run.
type Options struct {
	// For ends the demo after this long; 0 runs until ctx is done.
	For time.Duration
	// Sets are KEY=VALUE desired-state changes made once the kit is up.
	Sets []string
	// Input, when not nil, is read for more KEY=VALUE lines; its end is
	// not a reason to stop.
	Input io.Reader
	// Out gets what flows; Err the demo's own errors (a mistyped line).
	Out, Err io.Writer
	Log      *slog.Logger
	Registry *sensors.Registry
	Clock    telemetry.Clock
	Version  string
	// Provision starts the kit unprovisioned, with a claim certificate,
	// and onboards it through a provisioning emulator (provision.go).
	Provision bool
	// Job, when not nil, is a job document sent to the kit once it is
	// connected; each status change of its execution is printed (job.go).
	Job []byte
}

// ParseSet turns "sensors.sim.interval=5s" into a desired document,
// {"sensors":{"sim":{"interval":"5s"}}}. It checks the form only: the
// agent validates the value, and a refusal shows in reported errors.
func ParseSet(s string) (map[string]any, error) {
	key, val, ok := strings.Cut(strings.TrimSpace(s), "=")
	key = strings.TrimSpace(key)
	if !ok || key == "" {
		return nil, fmt.Errorf("%q: want KEY=VALUE, e.g. sensors.sim.interval=5s", s)
	}
	return shadow.DesiredPatch(key, strings.TrimSpace(val))
}
