package publisher

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kitd-dev/kitd/buffer"
	"github.com/kitd-dev/kitd/logdedup"
	"github.com/kitd-dev/kitd/telemetry"
)

// Stats is a snapshot of the publisher's counters.
type Stats struct {
	// Connected is true while a connection is up.
	Connected bool
	// Delivered counts readings and Messages messages the broker
	// acknowledged (PUBACK), since the publisher was made.
	Delivered, Messages int64
	// Reconnects counts connections made after the first.
	Reconnects int64
	// Discarded counts buffered records that could not be sent and were
	// acknowledged to the buffer without delivery: bytes that do not decode
	// as a reading, or a reading larger than batch.max_bytes.
	Discarded int64
	// ConnectFailures counts failed connection attempts.
	ConnectFailures int64
	// LastError is the latest connection failure or loss.
	LastError string
	// CertExpires is the client certificate's NotAfter (zero for tcp://).
	CertExpires time.Time
}

// options are the timings and seams tests shrink or replace.
type options struct {
	// The reconnect schedule (see schedule): waits of 1-2 s, 1-4 s,
	// 1-8 s, then 1-10 s until 10 minutes have passed without a
	// CONNACK, then doubling up to 1-120 s.
	backoffMin, backoffFast, backoffMax, backoffPatience time.Duration
	// stableAfter is how long a connection must stay up before the
	// backoff is reset.
	stableAfter time.Duration
	// youngLoss: a connection lost within this long of connecting after
	// it published is taken for a broker refusing the publish.
	youngLoss time.Duration
	// tick is how often idle loops wake to show progress and check acks.
	tick time.Duration
	// logEvery is the interval of the repeated-line filter.
	logEvery time.Duration
	// certWarn warns when the client certificate expires within it.
	certWarn time.Duration
	// readChunk is how many records one Reader.Next returns at most.
	readChunk int
	// limiterNow is the rate limiter's monotonic clock, lingerNow the
	// one batch.max_delay is measured on.
	limiterNow, lingerNow func() time.Duration
	rand                  func(n int64) int64
}

func (o options) schedule() schedule {
	return schedule{min: o.backoffMin, fast: o.backoffFast, max: o.backoffMax, patience: o.backoffPatience}
}

func defaultOptions() options {
	start := time.Now()
	return options{
		backoffMin:      time.Second,
		backoffFast:     10 * time.Second,
		backoffMax:      2 * time.Minute,
		backoffPatience: 10 * time.Minute,
		stableAfter:     30 * time.Second,
		youngLoss:       10 * time.Second,
		tick:            time.Second,
		logEvery:        logdedup.Every,
		certWarn:        30 * 24 * time.Hour,
		readChunk:       256,
		limiterNow:      func() time.Duration { return time.Since(start) },
		lingerNow:       func() time.Duration { return time.Since(start) },
		rand:            cryptoRand,
	}
}

// cryptoRand is used for jitter so kits booted from the same image do not
// share a math/rand sequence and reconnect in step.
func cryptoRand(n int64) int64 {
	v, err := rand.Int(rand.Reader, big.NewInt(n))
	if err != nil {
		return n / 2
	}
	return v.Int64()
}

// Publisher delivers the buffer's readings to an MQTT broker. See the
// package documentation for the lifecycle.
type Publisher struct {
	cfg            Config
	opt            options
	device         string
	broker         *broker
	telemetryTopic string
	statusTopic    string
	alertTopic     string
	payloadLimit   int
	buf            *buffer.Buffer
	clk            telemetry.Clock
	log            *slog.Logger
	lim            *limiter

	maxReadings atomic.Int32

	// alerts are the alert records waiting to go ahead of readings
	// (alerts.go); only Run's goroutine touches them.
	alerts  alertQueue
	running atomic.Bool

	hookMu sync.Mutex
	hooks  []func(context.Context, *Session)
	hookWG sync.WaitGroup

	// Oversize detection, owned by Run's goroutine (drain runs on it): a
	// broker that closes the connection on a packet over its limit says
	// nothing else, so a message larger than any it acknowledged that is
	// unacknowledged at several losses in a row is taken for too large.
	maxAcked  int    // largest payload the broker acknowledged
	suspect   uint64 // first seq of the message unacknowledged at the last loss
	strikes   int
	shrunk    int // payload limit learnt at run time; 0 none
	oversized int // size of the suspect message at the last loss; 0 none

	// rejectedCert is the certificate (DER) the broker rejected at the last
	// attempt, "" if none, and rejectedErr what was said of it
	// (sameRejection); only Run's goroutine touches them.
	rejectedCert string
	rejectedErr  error

	// tls is the last good set of files (read again at every connect so a
	// renewed certificate is picked up); only Run's goroutine touches it.
	tls *tlsFiles
	// password is the last good content of password_file (read again at
	// every connect, like the TLS files); only Run's goroutine touches it
	// after New. Never logged.
	password []byte

	// session is the connection up now, nil while offline (Republish).
	session atomic.Pointer[Session]

	connected   atomic.Bool
	delivered   atomic.Int64
	messages    atomic.Int64
	reconnects  atomic.Int64
	discarded   atomic.Int64
	failures    atomic.Int64
	certExpires atomic.Int64 // unix nanoseconds; 0 unknown
	progress    atomic.Int64 // unix nanoseconds
	lastErr     atomic.Pointer[string]
}

// Deps are what a Publisher is given besides its Config (the mqtt section
// of the config file).
type Deps struct {
	// Device is the device id (device.id), checked by
	// telemetry.CheckDevice; it fills {device} in the topics.
	Device string
	// Buffer is drained by Run; required.
	Buffer *buffer.Buffer
	// Clock re-stamps readings taken before the clock synced; required.
	Clock telemetry.Clock
	// Log gets component=publisher added; nil discards.
	Log *slog.Logger
}

// New checks cfg as Validate does (the TLS files are read once, here) and
// deps, and returns a Publisher that drains deps.Buffer. Nothing connects
// until Run.
func New(cfg Config, deps Deps) (*Publisher, error) {
	return newPublisher(cfg, deps, defaultOptions())
}

func newPublisher(cfg Config, deps Deps, opt options) (*Publisher, error) {
	// Validate's file half is the loading of the files, done here once:
	// the run path's config.Check has read them already, and reading
	// them a third time to keep the result of the second would be waste.
	var errs []error
	if err := cfg.ValidateSettings(); err != nil {
		errs = append(errs, err)
	}
	b, _ := parseBroker(cfg.Broker, cfg.ALPN) // nil if invalid: reported above
	var files *tlsFiles
	if b != nil && b.tls {
		f, err := loadTLSFiles(cfg.CAFile, cfg.CertFile, cfg.KeyFile, cfg.Username != "")
		if err != nil {
			errs = append(errs, err)
		}
		files = f
	}
	device, buf, clk, log := deps.Device, deps.Buffer, deps.Clock, deps.Log
	if err := telemetry.CheckDevice(device); err != nil {
		errs = append(errs, fmt.Errorf("device.id: %w", err))
	}
	if buf == nil || clk == nil {
		errs = append(errs, errors.New("publisher: a buffer and a clock are required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Publisher{
		cfg:            cfg,
		opt:            opt,
		device:         device,
		broker:         b,
		telemetryTopic: strings.ReplaceAll(cfg.TelemetryTopic, "{device}", device),
		statusTopic:    strings.ReplaceAll(cfg.StatusTopic, "{device}", device),
		alertTopic:     strings.ReplaceAll(cfg.AlertTopic, "{device}", device),
		buf:            buf,
		clk:            clk,
		log:            slog.New(logdedup.New(log.Handler(), opt.logEvery)).With("component", "publisher"),
		lim:            newLimiter(cfg.MaxPublishRate, opt.limiterNow),
	}
	// AWS counts the topic against the 128KB limit of the whole message.
	p.payloadLimit = min(int(cfg.Batch.MaxBytes), int(MaxPayload)-len(p.telemetryTopic)-2)
	if cfg.MaxPacketBytes > 0 {
		p.payloadLimit = min(p.payloadLimit, int(cfg.MaxPacketBytes)-maxPublishOverhead-len(p.telemetryTopic))
		if p.payloadLimit < int(minBatchBytes)/2 {
			return nil, fmt.Errorf("max_packet_bytes: %s leaves %d bytes for a message on %s", cfg.MaxPacketBytes, p.payloadLimit, p.telemetryTopic)
		}
	}
	p.maxReadings.Store(int32(cfg.Batch.MaxReadings))
	if files != nil {
		p.tls = files
		if files.leaf != nil {
			p.certExpires.Store(files.leaf.NotAfter.UnixNano())
		}
	}
	if cfg.PasswordFile != "" {
		pw, err := readPassword(cfg.PasswordFile)
		if err != nil {
			return nil, err
		}
		p.password = pw
	}
	p.touch()
	return p, nil
}

// OnConnect registers fn to run, in a goroutine of its own, after every
// successful connect (and after the connected:true status is published).
// Its ctx is cancelled when that connection ends; Run waits for it (within
// the shutdown timeout) before returning. Register before Run.
func (p *Publisher) OnConnect(fn func(ctx context.Context, s *Session)) {
	p.hookMu.Lock()
	defer p.hookMu.Unlock()
	p.hooks = append(p.hooks, fn)
}

// SetBatchMaxReadings changes batch.max_readings for the messages packed
// from now on (the shadow's mqtt.batch.max_readings). The value is checked
// as the config file's is.
func (p *Publisher) SetBatchMaxReadings(n int) error {
	if err := validateMaxReadings(n); err != nil {
		return fmt.Errorf("batch.max_readings: %w", err)
	}
	p.maxReadings.Store(int32(n))
	return nil
}

// BatchMaxReadings is batch.max_readings in force now.
func (p *Publisher) BatchMaxReadings() int { return int(p.maxReadings.Load()) }

// BatchMaxDelay is mqtt.batch.max_delay, for the shadow's report.
func (p *Publisher) BatchMaxDelay() time.Duration { return p.cfg.Batch.MaxDelay }

// Stats returns a snapshot of the counters.
func (p *Publisher) Stats() Stats {
	s := Stats{
		Connected:  p.connected.Load(),
		Delivered:  p.delivered.Load(),
		Messages:   p.messages.Load(),
		Reconnects: p.reconnects.Load(),
		Discarded:  p.discarded.Load(),

		ConnectFailures: p.failures.Load(),
	}
	if e := p.lastErr.Load(); e != nil {
		s.LastError = *e
	}
	if ns := p.certExpires.Load(); ns != 0 {
		s.CertExpires = time.Unix(0, ns)
	}
	return s
}

// Progress is the last time the delivery loop showed it is alive: it
// advances at least every second while connecting, delivering, idling or
// backing off, and stops if the loop wedges (the systemd watchdog).
func (p *Publisher) Progress() time.Time { return time.Unix(0, p.progress.Load()) }

func (p *Publisher) touch() { p.progress.Store(time.Now().UnixNano()) }

func (p *Publisher) setErr(err error) {
	s := err.Error()
	p.lastErr.Store(&s)
}

// sleep waits d while showing progress; false if ctx ended first.
func (p *Publisher) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	tick := time.NewTicker(p.opt.tick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			p.touch()
			return true
		case <-tick.C:
			p.touch()
		}
	}
}

// checkCert records the client certificate's expiry and warns within
// opt.certWarn of it.
func (p *Publisher) checkCert(f *tlsFiles) {
	if f.leaf == nil {
		return // no client certificate: a user name and password instead
	}
	na := f.leaf.NotAfter
	p.certExpires.Store(na.UnixNano())
	left := na.Sub(p.clk.Now())
	switch {
	case left <= 0:
		p.log.Error("client certificate has expired: the broker will refuse it; install a renewed certificate",
			"cert_file", p.cfg.CertFile, "not_after", na.UTC().Format(time.RFC3339))
	case left < p.opt.certWarn:
		p.log.Warn("client certificate expires soon: renew it before the broker refuses it",
			"cert_file", p.cfg.CertFile, "not_after", na.UTC().Format(time.RFC3339),
			"days_left", int(left.Hours()/24))
	}
}
