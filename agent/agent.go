package agent

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kitd-dev/kitd/alerts"
	"github.com/kitd-dev/kitd/buffer"
	"github.com/kitd-dev/kitd/config"
	"github.com/kitd-dev/kitd/httpsout"
	"github.com/kitd-dev/kitd/internal/safefile"
	"github.com/kitd-dev/kitd/jobs"
	"github.com/kitd-dev/kitd/jobs/ops"
	"github.com/kitd-dev/kitd/publisher"
	"github.com/kitd-dev/kitd/sensors"
	"github.com/kitd-dev/kitd/shadow"
	"github.com/kitd-dev/kitd/systemd"
	"github.com/kitd-dev/kitd/telemetry"
	"github.com/kitd-dev/kitd/update"
)

// Deps are what the agent is given besides its config.
type Deps struct {
	// ConfigFile and Environ are re-read on Reload.
	ConfigFile string
	Environ    []string
	// Reloads asks for a Reload: each receive re-reads ConfigFile. Nil:
	// only direct Reload calls reload.
	Reloads <-chan struct{}
	// Registry resolves the sensors' drivers and Clock stamps readings;
	// both required (ErrMissingDeps).
	Registry *sensors.Registry
	Clock    telemetry.Clock
	// Log is the logger the agent hands to every part, each of which adds
	// its component attribute (the agent's own lines: component=agent);
	// nil discards.
	Log *slog.Logger
	// Notifier talks to systemd; nil when not under systemd.
	Notifier *systemd.Notifier
	// WatchdogInterval is systemd's WatchdogSec; 0 disables the pings.
	WatchdogInterval time.Duration
	// StatusInterval is how often STATUS= is refreshed (default 10s).
	StatusInterval time.Duration
	// Version is reported in the log and the shadow.
	Version string
	// UpdateDir is the self-update directory (update.Dir); "" when not
	// under systemd, which refuses updates.
	UpdateDir string
	// UpdateTrial is set when this process is a new version on trial: it
	// is confirmed at the first connection (agent/update.go).
	UpdateTrial *update.Trial

	// progress wraps the liveness probes; tests wedge a loop through it.
	progress func(name string, probe func() time.Time) func() time.Time
	// beforeBuild runs before a reload builds a part ("sensors",
	// "delivery") and as the shutdown begins ("shutdown"); tests change
	// files there, as a certificate renewal racing the reload would, or
	// wedge the shutdown.
	beforeBuild func(part string)
}

// Agent is one running kitd.
type Agent struct {
	deps    Deps
	log     *slog.Logger
	ran     atomic.Bool
	started time.Time

	// buf is set once Run has opened the buffer; Stats may be called
	// before that, from any goroutine.
	buf atomic.Pointer[buffer.Buffer]
	// The running parts are swapped by Reload; readers (the shadow, status,
	// watchdog) load them without the lifecycle lock, which Reload holds
	// while waiting for a part to stop.
	sched atomic.Pointer[component[*sensors.Scheduler]]
	pub   atomic.Pointer[component[*publisher.Publisher]]
	sh    atomic.Pointer[shadow.Shadow]
	// alerts evaluates the alert rules on each reading (alerts.go); set
	// once Run has opened the buffer, before the sensors start.
	alerts atomic.Pointer[alerts.Evaluator]
	// https replaces pub and sh with output: https (https.go).
	https atomic.Pointer[component[*httpsout.Sender]]

	lifecycle sync.Mutex // serializes Reload and shutdown
	cfg       *config.Config
	certs     [32]byte

	ident identity // fleet provisioning (identity.go)
	// Jobs (jobs.go): the client, kept across reloads, and restart
	// requests from its operations.
	jobs        *jobs.Client
	jobsDevice  string
	jobSettings atomic.Pointer[ops.Settings]
	restartc    chan struct{}
}

// component is a running part with its own context, so a reload can
// replace it without touching the others.
type component[T any] struct {
	v      T
	cancel context.CancelFunc
	done   chan struct{}
}

func (c *component[T]) stop() {
	if c == nil || c.cancel == nil {
		return // nothing running (a part being swapped in)
	}
	c.cancel()
	<-c.done
}

// New builds the agent; Run starts it. cfg must be one config.Check
// accepted (Reload takes the same path): validating it again here
// would read the certificate files twice on the way to run.
func New(cfg *config.Config, deps Deps) (*Agent, error) {
	if deps.Registry == nil || deps.Clock == nil {
		return nil, ErrMissingDeps
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	if deps.StatusInterval <= 0 {
		deps.StatusInterval = 10 * time.Second
	}
	if deps.progress == nil {
		deps.progress = func(_ string, p func() time.Time) func() time.Time { return p }
	}
	if deps.beforeBuild == nil {
		deps.beforeBuild = func(string) {}
	}
	return &Agent{deps: deps, log: deps.Log.With("component", "agent"), cfg: cfg, restartc: make(chan struct{}, 1)}, nil
}

// Run runs the agent until ctx is done. A receive on Deps.Reloads
// re-reads the config file. It returns nil after a clean shutdown, and
// ErrRunTwice if called again.
func (a *Agent) Run(ctx context.Context) (err error) {
	if !a.ran.CompareAndSwap(false, true) {
		return ErrRunTwice
	}
	a.started = time.Now()
	buf, err := buffer.Open(a.cfg.Buffer, buffer.Deps{Log: a.deps.Log, GapRecord: a.gapRecord})
	if err != nil {
		return fmt.Errorf("buffer: %w", err)
	}
	a.buf.Store(buf)
	stopped := false // the bounded stop closes the buffer itself
	defer func() {
		if stopped {
			return
		}
		if cerr := buf.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("buffer: %w", cerr))
		}
	}()
	a.startAlerts(a.cfg)
	st := buf.Stats()
	a.log.Info("buffer open", "dir", a.cfg.Buffer.Dir, "pending", st.Pending, "next_seq", st.NextSeq, "epoch", st.Epoch)

	sched, err := a.newScheduler(a.cfg)
	if err != nil {
		return err
	}
	a.runSensors(sched)
	a.updateRunning()
	d, err := a.buildDelivery(a.cfg)
	if err != nil {
		a.sched.Load().stop()
		return err
	}
	a.startDelivery(d)
	a.applyJobSettings(a.cfg)
	a.certs = certsHash(a.cfg)

	n := a.deps.Notifier
	_ = n.Ready()
	a.log.Info("kitd running", "device", a.cfg.Device.ID, "sensors", len(a.cfg.Sensors), "version", a.deps.Version)

	wctx, wcancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	if a.deps.WatchdogInterval > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			systemd.RunWatchdog(wctx, n, a.deps.WatchdogInterval, a.checks(), a.log)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.reportStatus(wctx)
	}()
	a.startIdentity(wctx, &wg)

	restart := false
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-a.restartc:
			done, restart = true, true
		case <-a.deps.Reloads:
			if err := a.Reload(); err != nil {
				a.log.Error("reload failed", "file", a.deps.ConfigFile, "err", err)
			}
		}
	}
	_ = n.Stopping()
	a.log.Info("stopping")
	wcancel()
	wg.Wait()
	stopped = true
	err = a.stopWithin(buf, a.cfg.MQTT.ShutdownTimeout+shutdownSlack)
	if err == nil && restart {
		return ErrRestart
	}
	return err
}

// shutdownSlack is what the agent's stop may take beyond the publisher's
// shutdown_timeout: the scheduler's stop (its calls are abandoned at their
// deadline), the shadow's goodbye (2 s) and the buffer's final fsync.
const shutdownSlack = 5 * time.Second

// stopWithin runs the shutdown and the buffer's close under one deadline,
// so a wedged part (a disk that no longer answers an fsync, a library
// that ignores its deadline) cannot keep the agent from exiting: systemd
// would otherwise kill it at TimeoutStopSec with no word in the log. What
// the buffer had not fsynced is what a kill -9 loses (see buffer/doc.go).
func (a *Agent) stopWithin(buf *buffer.Buffer, limit time.Duration) error {
	done := make(chan error, 1)
	go func() {
		a.shutdown()
		done <- buf.Close()
	}()
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("buffer: %w", err)
		}
		return nil
	case <-t.C:
		return fmt.Errorf("stop did not finish within %s (shutdown_timeout + %s): exiting without waiting further", limit, shutdownSlack)
	}
}

// shutdown stops intake first, then says goodbye on the shadow, then lets
// the publisher flush, publish connected:false and disconnect (bounded by
// its shutdown timeout); the deferred buffer Close syncs what is left.
func (a *Agent) shutdown() {
	a.lifecycle.Lock()
	defer a.lifecycle.Unlock()
	a.deps.beforeBuild("shutdown")
	a.sched.Load().stop()
	if sh := a.sh.Load(); sh != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := sh.Shutdown(ctx); err != nil {
			a.log.Debug("shadow: connected:false not reported", "err", err)
		}
		cancel()
	}
	a.stopDelivery()
}

func (a *Agent) newScheduler(cfg *config.Config) (*sensors.Scheduler, error) {
	a.deps.beforeBuild("sensors")
	return sensors.NewScheduler(cfg.Sensors, sensors.Deps{Registry: a.deps.Registry, Sink: a.sink, Clock: a.deps.Clock, Log: a.deps.Log})
}

func (a *Agent) runSensors(sched *sensors.Scheduler) {
	a.sched.Store(run(sched, a.log, "scheduler"))
}

// delivery is a publisher and, when enabled, the shadow that rides on its
// connections: built, not running.
type delivery struct {
	pub *publisher.Publisher
	sh  *shadow.Shadow
	// https, with output: https, is all there is (https.go).
	https *httpsout.Sender
}

func (a *Agent) buildDelivery(cfg *config.Config) (delivery, error) {
	a.deps.beforeBuild("delivery")
	cfg, ok, err := identityFor(cfg)
	if err != nil || !ok {
		return delivery{}, err // no identity yet: onboarding starts delivery
	}
	if cfg.Output == config.OutputHTTPS {
		return a.buildHTTPS(cfg)
	}
	pub, err := publisher.New(cfg.MQTT, publisher.Deps{Device: cfg.Device.ID, Buffer: a.buf.Load(), Clock: a.deps.Clock, Log: a.deps.Log})
	if err != nil {
		return delivery{}, err
	}
	d := delivery{pub: pub}
	a.addRenewal(pub, cfg)
	if err := a.hookJobs(cfg, pub); err != nil {
		return delivery{}, err
	}
	a.confirmUpdateOnConnect(pub)
	if cfg.Shadow.Enabled {
		sh, err := shadow.New(cfg.Shadow, shadow.Deps{
			Device: cfg.Device.ID, Sensors: cfg.SensorNames(), BatchMaxReadings: cfg.MQTT.Batch.MaxReadings,
			Target: target{a}, State: a.shadowState, Log: a.deps.Log,
		})
		if err != nil {
			return delivery{}, err
		}
		pub.OnConnect(func(ctx context.Context, s *publisher.Session) { sh.OnConnect(ctx, s) })
		d.sh = sh
	}
	return d, nil
}

// startDelivery makes d the running delivery. The persisted desired state
// is applied before the first connection, so a reboot while offline keeps
// it, and after d's publisher is current: the shadow's target reaches the
// publisher through a.pub.
func (a *Agent) startDelivery(d delivery) {
	if d.https != nil {
		a.startHTTPS(d.https)
		return
	}
	a.https.Store(nil)
	a.sh.Store(nil)
	if d.pub == nil {
		a.pub.Store(nil) // not onboarded yet (identity.go)
		return
	}
	a.pub.Store(&component[*publisher.Publisher]{v: d.pub})
	if d.sh != nil {
		if err := d.sh.ApplyPersisted(); err != nil {
			a.log.Warn("shadow: persisted desired state not applied", "err", err)
		}
		a.sh.Store(d.sh)
	}
	a.pub.Store(run(d.pub, a.log, "publisher"))
}

// runner is a part with the lifecycle's Run (doc.go).
type runner interface {
	Run(ctx context.Context) error
}

// run starts v.Run under a context of its own, which the component's stop
// cancels.
func run[T runner](v T, log *slog.Logger, name string) *component[T] {
	ctx, cancel := context.WithCancel(context.Background())
	c := &component[T]{v: v, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		if err := v.Run(ctx); err != nil {
			log.Error(name+" stopped", "err", err)
		}
	}()
	return c
}

// gapRecord stamps a gap the buffer found like a reading taken now, so it
// carries the same clock state and is re-stamped the same way.
func (a *Agent) gapRecord(g buffer.Gap) []byte {
	clk := a.deps.Clock
	tg := telemetry.Gap{From: g.From, To: g.To, Reason: g.Reason.String(), Time: clk.Now(), Boot: clk.Boot(), Mono: clk.Mono()}
	if !clk.Synced() {
		tg.Clock = telemetry.ClockUnsynced
	}
	return telemetry.MarshalGap(nil, tg)
}

// sink is where the scheduler's readings go: encoded and appended to the
// buffer, which is the only record of what must be delivered.
func (a *Agent) sink(r telemetry.Reading) error {
	rec, err := telemetry.MarshalRecord(nil, r)
	if err != nil {
		return err
	}
	seq, err := a.buf.Load().Append(rec)
	if err != nil {
		return err
	}
	a.checkAlerts(r, seq)
	return nil
}

// Reload re-reads the config file and applies what changed, as
// alertmanager's reloader does: everything that changed (config, sensor
// scheduler, delivery: publisher with shadow, jobs and renewal, or the
// HTTPS sender) is built first, and only when all of it is ready are the
// running parts swapped. If anything fails, nothing running is touched (a
// renewed certificate with a bad key leaves delivery on the old files) and
// the error says why; the caller logs it. Sensors restart when their
// section changed; the delivery when the broker, identity, topics,
// certificate files, output, https, jobs or provisioning sections changed;
// alert rules and jobs' persisted settings are applied again; the buffer
// is kept (its settings apply at the next start).
func (a *Agent) Reload() error {
	n := a.deps.Notifier
	_ = n.Reloading()
	defer func() { _ = n.Ready() }()
	const refused = "reload refused, keeping the running config"
	cfg, err := config.Check(a.deps.ConfigFile, a.deps.Environ, a.deps.Registry)
	if err != nil {
		return fmt.Errorf("%s: %w", refused, err)
	}
	a.lifecycle.Lock()
	defer a.lifecycle.Unlock()
	old := a.cfg
	if !reflect.DeepEqual(cfg.Buffer, old.Buffer) {
		a.log.Warn("reload: buffer settings take effect at the next start")
		cfg.Buffer = old.Buffer
	}
	var sched *sensors.Scheduler
	if !reflect.DeepEqual(cfg.Sensors, old.Sensors) || cfg.Clock != old.Clock {
		if sched, err = a.newScheduler(cfg); err != nil {
			return fmt.Errorf("%s: sensors: %w", refused, err)
		}
	}
	certs := certsHash(cfg)
	deliveryChanged := !reflect.DeepEqual(cfg.MQTT, old.MQTT) || cfg.Device != old.Device || cfg.Shadow != old.Shadow || certs != a.certs ||
		cfg.Output != old.Output || cfg.HTTPS != old.HTTPS || cfg.Jobs != old.Jobs || !reflect.DeepEqual(cfg.Provisioning, old.Provisioning)
	var d delivery
	if deliveryChanged {
		if d, err = a.buildDelivery(cfg); err != nil {
			return fmt.Errorf("%s: connection: %w", refused, err)
		}
	}
	// Everything is ready: swap. Sensors first, so the new shadow's
	// persisted desired state reaches the new scheduler.
	if sched != nil {
		a.sched.Load().stop()
		a.runSensors(sched)
		a.log.Info("reload: sensors restarted", "sensors", len(cfg.Sensors))
	}
	if deliveryChanged {
		a.stopDelivery()
		a.startDelivery(d)
		a.certs = certs
		a.log.Info("reload: connection restarted", "broker", cfg.MQTT.Broker)
	} else if sh := a.sh.Load(); sh != nil {
		if err := sh.Reapply(cfg.SensorNames(), cfg.MQTT.Batch.MaxReadings); err != nil {
			a.log.Warn("reload: desired state not re-applied", "err", err)
		}
	}
	a.reloadAlerts(old, cfg)
	a.applyJobSettings(cfg)
	a.cfg = cfg
	a.log.Info("config reloaded", "file", a.deps.ConfigFile)
	return nil
}

// certsHash lets a reload notice a renewed certificate at the same path.
// A file that cannot be read safely (a FIFO, /dev/zero) counts as empty
// here; the publisher's own checks refuse it with a clear error.
func certsHash(cfg *config.Config) [32]byte {
	if c, ok, _ := identityFor(cfg); ok {
		cfg = c // a renewed identity.pem counts as a changed certificate
	}
	h := sha256.New()
	for _, f := range []string{cfg.MQTT.CAFile, cfg.MQTT.CertFile, cfg.MQTT.KeyFile, cfg.HTTPS.CAFile, cfg.HTTPS.CertFile, cfg.HTTPS.KeyFile, cfg.HTTPS.APIKeyFile} {
		if f == "" {
			continue
		}
		b, err := safefile.Read(f, safefile.Rules{Max: 1 << 20})
		if err != nil {
			continue
		}
		h.Write(b)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

// Stats is a summary for status lines.
type Stats struct {
	Connected        bool
	Pending, Dropped int64
	// Lost counts lost seqs by reason (buffer.Stats.Lost).
	Lost             map[string]int64
	Delivered        int64
	LastPublishError string
}

// Stats reads the current state.
func (a *Agent) Stats() Stats {
	var s Stats
	if buf := a.buf.Load(); buf != nil {
		b := buf.Stats()
		s.Pending, s.Dropped, s.Lost = b.Pending, b.Dropped, b.Lost
	}
	if c := a.pub.Load(); c != nil {
		p := c.v.Stats()
		s.Connected, s.Delivered, s.LastPublishError = p.Connected, p.Delivered, p.LastError
	}
	a.httpsStats(&s)
	return s
}

// Shadow is the running shadow, nil when disabled.
func (a *Agent) Shadow() *shadow.Shadow { return a.sh.Load() }

func (a *Agent) reportStatus(ctx context.Context) {
	t := time.NewTicker(a.deps.StatusInterval)
	defer t.Stop()
	last := ""
	for {
		s := a.Stats()
		state := "offline"
		if s.Connected {
			state = "connected"
		}
		line := fmt.Sprintf("%s, %d pending, %d dropped%s", state, s.Pending, s.Dropped, lossDetail(s.Lost))
		if line != last {
			_ = a.deps.Notifier.Status(line)
			last = line
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// lossDetail spells out the non-zero loss counts by reason, in the buffer's
// order: " (full 120, corrupt 3)".
func lossDetail(lost map[string]int64) string {
	var parts []string
	for _, r := range buffer.Reasons() {
		if n := lost[r.String()]; n > 0 && r != buffer.ReasonUnused {
			parts = append(parts, fmt.Sprintf("%s %d", r, n))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// bufferFailLimit is how long every buffer write may fail (an unwritable or
// read-only directory, I/O errors; not a full disk, which the buffer copes
// with) before the agent stops being healthy and systemd restarts it.
const bufferFailLimit = time.Minute

// checks are the watchdog's liveness probes: a wedged scheduler or
// publisher loop stops the pings and systemd restarts the agent.
func (a *Agent) checks() []systemd.Check {
	// The loops tick at least every second; 3 s rides out a slow board.
	maxAge := max(a.deps.WatchdogInterval/2, 3*time.Second)
	return []systemd.Check{
		systemd.ProgressCheck("scheduler", a.deps.progress("scheduler", func() time.Time { return a.sched.Load().v.Progress() }), maxAge),
		systemd.ProgressCheck("publisher", a.deps.progress("publisher", a.deliveryProgress), maxAge),
		func(now time.Time) error {
			if since := a.buf.Load().FailingSince(); !since.IsZero() && now.Sub(since) > bufferFailLimit {
				return fmt.Errorf("buffer: every write has failed for %s", now.Sub(since).Round(time.Second))
			}
			return nil
		},
	}
}

// shadowState is the live state the shadow reports.
func (a *Agent) shadowState() shadow.State {
	st := shadow.State{Agent: shadow.Agent{Version: a.deps.Version, Arch: runtime.GOOS + "/" + runtime.GOARCH, Started: a.started}}
	for _, h := range a.sched.Load().v.Health() {
		st.Sensors = append(st.Sensors, shadow.Sensor{
			Name: h.Name, Driver: h.Driver, Interval: h.Interval, Enabled: h.Enabled,
			OK: h.OK, LastError: h.LastError, LastReading: h.LastReading,
		})
	}
	b := a.buf.Load().Stats()
	st.Buffer = shadow.Buffer{Pending: b.Pending, Bytes: b.Bytes, Dropped: b.Dropped, Lost: b.Lost, DroppedRanges: b.DroppedRanges}
	// The shadow rides on the publisher's connection, so there is one
	// whenever it asks; nil only without MQTT delivery (HTTPS output, a
	// kit not yet onboarded), where nothing reads this.
	if c := a.pub.Load(); c != nil {
		st.Agent.CertExpires = c.v.Stats().CertExpires
		st.MQTT.BatchMaxDelay = c.v.BatchMaxDelay()
	}
	a.identityState(&st)
	st.Alerts = a.activeAlerts()
	return st
}

// target applies desired state to whichever scheduler and publisher are
// running now (a reload may have replaced them).
type target struct{ a *Agent }

func (t target) SetInterval(sensor string, d time.Duration) error {
	return t.a.sched.Load().v.SetInterval(sensor, d)
}

func (t target) SetEnabled(sensor string, on bool) error {
	return t.a.sched.Load().v.SetEnabled(sensor, on)
}

func (t target) SetBatchMaxReadings(n int) error {
	c := t.a.pub.Load()
	if c == nil {
		return errNoPublisher
	}
	return c.v.SetBatchMaxReadings(n)
}
