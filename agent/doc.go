// Package agent runs kitd: it opens the buffer, starts the scheduler, the
// publisher and the shadow under one context, keeps systemd informed, and
// reloads the config on request. It holds the supervision, not the logic:
// every decision about readings, delivery or desired state lives in the
// package that owns it.
//
// # Lifecycle
//
// Every long-lived part has the same shape; a new one (an alert sender, a
// second output) should take it too, so the agent can build, run, swap and
// stop it like the others:
//
//	part        built by                                  runs                     stops
//	buffer      buffer.Open(cfg, buffer.Deps)             its loop, from Open      Close()
//	scheduler   sensors.NewScheduler(cfgs, sensors.Deps)  Run(ctx)                 ctx done
//	publisher   publisher.New(cfg, publisher.Deps)        Run(ctx)                 ctx done
//	shadow      shadow.New(cfg, shadow.Deps)              on the publisher's       Shutdown(ctx)
//	                                                      connections (OnConnect)
//	agent       agent.New(cfg, agent.Deps)                Run(ctx)                 ctx done
//
// The rules:
//
//   - The constructor is New, or New<Type> where the package holds more
//     than the one part (sensors.NewScheduler), or Open where it opens
//     files. It takes cfg, the package's own section of the config file
//     (its Config, with DefaultConfig and a Validate naming fields by
//     their path), and one Deps struct: everything else the part is given.
//     The device id is in Deps (it is another section's key, device.id),
//     as are the other parts it uses, the clock, the logger and
//     callbacks. Optional fields mean "the default" when zero; unexported
//     fields are the tests' seams. The constructor checks cfg and deps,
//     returns an error naming what is wrong, and neither touches hardware
//     nor connects, so a reload can build a part and throw it away (Open
//     is the exception by name: it takes the buffer directory's lock, and
//     a reload keeps the buffer).
//   - Clocks are telemetry.Clock, declared once where readings are
//     stamped; clock.System implements it.
//   - A nil Deps.Log discards. Each part adds component=<its package> to
//     the logger it is given, so callers hand every part the same plain
//     logger (the agent's own lines say component=agent); errors go under
//     the key "err".
//   - Run(ctx) error runs the part until ctx is done, then stops within a
//     bound its doc states (the publisher: mqtt.shutdown_timeout; the
//     scheduler: its drivers' deadlines), releases what it opened and
//     returns nil. A second Run returns the package's ErrRunTwice: a part
//     runs once, and a reload builds a new one.
//   - A part that holds state outside Run has Close (the buffer: files and
//     a lock, its loop started by Open, since nothing may append before it
//     runs) or Shutdown(ctx) (the shadow: a goodbye over a connection it
//     does not own). Both are idempotent. Shutdown is bounded by its ctx
//     (returning ctx's error, wrapped, if the deadline wins), as net/http's
//     Server.Shutdown is; Close by the work left (the buffer's final
//     fsync), which the agent bounds from outside.
//   - Sentinel errors live in the package's errors.go, each commented "is
//     returned when ...": ErrClosed means used after Close, ErrRunTwice a
//     second Run, ErrConnectionLost a request whose connection ended.
//
// The agent composes them as alertmanager's app does: Run opens the
// buffer, builds and starts the scheduler, the alert evaluator on the
// sink, and the delivery: the publisher with the shadow, the jobs client
// and certificate renewal on its connections (jobs.go, identity.go), or
// with output: https the HTTPS sender alone (https.go); a kit without its
// identity yet collects while it onboards (identity.go). On ctx's end it
// stops intake first (the scheduler), then says the shadow's goodbye, then
// lets the delivery flush and disconnect, then closes the buffer; the
// whole stop is bounded by shutdown_timeout + 5 s. Reload builds every
// changed part before stopping any, and swaps only when all are ready, so
// a bad config or a bad key leaves the running parts untouched.
package agent
