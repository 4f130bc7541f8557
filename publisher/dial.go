package publisher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/kitd-dev/kitd/logdedup"
)

// OneShot is a connection made by Dial: a Session for a request/response
// exchange outside Run (fleet provisioning with the claim certificate).
// Close ends it.
type OneShot struct {
	*Session
	cancel context.CancelFunc
}

// Dial makes one connection to cfg's broker as clientID, with the same
// client rules as Run (fresh paho client, no AutoReconnect, clean session,
// TLS 1.2+ with the broker verified, bounded waits) but no Will, no
// status messages and no buffer. cfg is checked as New checks it, files
// included. It does not retry: the caller owns the backoff.
func Dial(ctx context.Context, cfg Config, clientID string, log *slog.Logger) (*OneShot, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if clientID == "" {
		return nil, errors.New("publisher: Dial needs a client id")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b, _ := parseBroker(cfg.Broker, cfg.ALPN) // validated above
	opt := defaultOptions()
	p := &Publisher{
		cfg:    cfg,
		opt:    opt,
		device: clientID,
		broker: b,
		clk:    wallClock{},
		log:    slog.New(logdedup.New(log.Handler(), opt.logEvery)).With("component", "publisher"),
		lim:    newLimiter(cfg.MaxPublishRate, opt.limiterNow),
	}
	if b.tls {
		f, err := loadTLSFiles(cfg.CAFile, cfg.CertFile, cfg.KeyFile, cfg.Username != "")
		if err != nil {
			return nil, err
		}
		p.tls = f
	}
	c, err := p.connect(ctx)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-c.lost:
		case <-sctx.Done():
		}
		cancel()
	}()
	return &OneShot{Session: &Session{p: p, c: c, ctx: sctx}, cancel: cancel}, nil
}

// Close disconnects (within 250 ms) and ends the session.
func (o *OneShot) Close() {
	if !o.c.isLost() {
		o.c.client.Disconnect(250)
	}
	o.c.kill(errStopping)
	o.cancel()
}

// Err is why the connection ended, nil while it is up.
func (o *OneShot) Err() error {
	if !o.c.isLost() {
		return nil
	}
	return fmt.Errorf("%w: %v", ErrConnectionLost, o.c.err())
}

// wallClock is the system clock, for checkCert's expiry warning on a
// one-off connection; nothing is stamped with it.
type wallClock struct{}

func (wallClock) Now() time.Time      { return time.Now() }
func (wallClock) Mono() time.Duration { return 0 }
func (wallClock) Boot() uint64        { return 0 }
func (wallClock) Synced() bool        { return true }
