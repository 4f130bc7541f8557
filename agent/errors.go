package agent

import "errors"

// Errors returned by New.
var (
	// ErrMissingDeps is returned when Deps lacks the sensor registry or
	// the clock.
	ErrMissingDeps = errors.New("agent: a registry and a clock are required")
)

// Errors returned by Run.
var (
	// ErrRunTwice is returned when Run is called on an Agent that runs or
	// has run: its parts are stopped and its buffer closed.
	ErrRunTwice = errors.New("agent: Run called twice")
)

// Errors returned to desired-state setters (the shadow, kitd.set-config).
var (
	// errNoPublisher is returned when a setting belongs to the publisher
	// and none runs (HTTPS output, a kit not yet onboarded).
	errNoPublisher = errors.New("agent: no MQTT delivery runs")
)
