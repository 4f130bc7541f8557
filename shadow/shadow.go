package shadow

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/kitd-dev/kitd/telemetry"
)

// Target is what desired state changes: the caller adapts the scheduler
// and the publisher to it. Its methods are called one at a time and must
// not call back into the Shadow.
type Target interface {
	SetInterval(sensor string, d time.Duration) error
	SetEnabled(sensor string, on bool) error
	SetBatchMaxReadings(n int) error
}

// Shadow keeps the AWS IoT device shadow in step with the agent: it
// reports the agent's state, applies desired settings to the Target and
// persists them. All methods are safe for concurrent use.
//
// Its fields are grouped by concern, each with its own files: applying
// desired state, persisting it, reporting, the errors entries, and the
// session on each connection.
type Shadow struct {
	cfg    Config
	device string
	topics topics
	target Target
	state  func() State
	log    *slog.Logger

	// Session (session.go, request.go, sync.go, events.go): tokens name
	// requests so replies find them; reqTimeout bounds each request, as
	// AWS answers in well under a second, so a missing answer means a
	// lost message or a dead link.
	tokens     tokenSource
	reqTimeout time.Duration

	// Reporting (report.go): kick asks the connected session to report
	// now (after a reload). reporting holds one token: one report in
	// flight, so a report built before Shutdown cannot land
	// after its connected:false. A channel, so a shutdown waiting for it
	// still obeys its ctx.
	kick      chan struct{}
	reporting chan struct{}

	mu sync.Mutex // guards everything below

	// Desired state (apply.go; persisted by persist.go): the config
	// file's values (base.go) and the desired settings in force over
	// them.
	base    base
	applied map[key]setting

	// Errors entries of reported (errorset.go).
	errs errorSet

	// Session: the versions that order what the service sends (sync.go);
	// the session of the connection up now, if any; closing once
	// Shutdown ran, after which nothing is reported.
	ver     versions
	cur     *session
	closing bool

	// Reporting: last is the reported state as the service holds it, as
	// far as we know; reports send the difference from it (the document
	// is built in state.go).
	last      map[string]any
	oversized bool // the size warning was logged
	// volatileAt is when the volatile figures were last sent (report.go);
	// now is the clock it is measured on (tests drive a day through it).
	volatileAt time.Time
	now        func() time.Time
}

// Deps are what a Shadow is given besides its Config (the shadow section
// of the config file).
type Deps struct {
	// Device is the device id (device.id), checked by
	// telemetry.CheckDevice; it names the thing in the shadow's topics.
	Device string
	// Sensors are the configured sensor names (desired settings for any
	// other name are errors); BatchMaxReadings is the config file's
	// mqtt.batch.max_readings. Reapply replaces both.
	Sensors          []string
	BatchMaxReadings int
	// Target applies desired settings; required.
	Target Target
	// State returns the live state; required. When ApplyPersisted and
	// Reapply run it must show the config file's intervals and enabled
	// flags, which become the values a removed desired setting returns to.
	State func() State
	// Log gets component=shadow and shadow=<name> added; nil discards.
	Log *slog.Logger
}

// New makes a Shadow for deps.Device. Nothing is sent until the publisher
// calls OnConnect.
func New(cfg Config, deps Deps) (*Shadow, error) {
	device, target, state, log := deps.Device, deps.Target, deps.State, deps.Log
	var errs []error
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := telemetry.CheckDevice(device); err != nil {
		errs = append(errs, fmt.Errorf("device.id: %w", err))
	}
	if target == nil {
		errs = append(errs, errors.New("shadow: nil target"))
	}
	if state == nil {
		errs = append(errs, errors.New("shadow: nil state func"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Shadow{
		cfg:        cfg,
		device:     device,
		topics:     newTopics(device, cfg.Name),
		target:     target,
		state:      state,
		log:        log.With("component", "shadow", "shadow", cfg.Name),
		tokens:     tokenSource{id: newTokenID()},
		reqTimeout: 10 * time.Second,
		kick:       make(chan struct{}, 1),
		reporting:  make(chan struct{}, 1),
		base:       newBase(deps.Sensors, deps.BatchMaxReadings),
		applied:    map[key]setting{},
		errs:       errorSet{},
		last:       map[string]any{},
		now:        time.Now,
	}, nil
}
