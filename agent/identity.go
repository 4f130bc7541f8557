package agent

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kitd-dev/kitd/config"
	"github.com/kitd-dev/kitd/provision"
	"github.com/kitd-dev/kitd/publisher"
	"github.com/kitd-dev/kitd/shadow"
)

// identity is the agent's share of fleet provisioning: onboarding in the
// background until the kit has its own identity, then renewing it over the
// kit's own connection. Sensors and the buffer run from the first boot
// whatever happens here: readings taken before onboarding are framed with
// the thing name only when they are published, so the backlog goes out
// under the new identity.
type identity struct {
	// ctx is Run's, ended before the shutdown; set before any goroutine
	// here starts.
	ctx atomic.Pointer[context.Context]
	// prov is the provisioning section of the delivery last built.
	prov atomic.Pointer[provision.Config]
	// restored is when a renewed certificate was last refused and the
	// previous one put back (unix nanoseconds, 0 never): renewal waits
	// renewRetryMax after it, so a broker that refuses every new
	// certificate does not get a new one per connection.
	restored atomic.Int64
	// progress is the onboarding loop's liveness (unix nanoseconds), the
	// watchdog's "publisher" probe until a publisher runs.
	progress atomic.Int64
	// sources, failpoint and timings are seams for tests.
	sources       provision.Sources
	failpoint     func(string) error
	retryMin      time.Duration
	retryMax      time.Duration
	renewRetryMin time.Duration
}

// Onboarding backoff: a refused template or an unreachable broker is
// retried from 10 s up to 10 min, jittered (the fleet flashed from one
// image must not come back in step).
const (
	onboardRetryMin = 10 * time.Second
	onboardRetryMax = 10 * time.Minute
	renewRetryMin   = time.Minute
	renewRetryMax   = time.Hour
)

func (a *Agent) identityCtx() context.Context {
	if p := a.ident.ctx.Load(); p != nil {
		return *p
	}
	return context.Background()
}

// startIdentity runs after the first delivery was started (or not, for a
// kit without its identity yet) with Run's context: onboarding when
// needed.
func (a *Agent) startIdentity(ctx context.Context, wg *sync.WaitGroup) {
	a.ident.ctx.Store(&ctx)
	a.ident.progress.Store(time.Now().UnixNano())
	if c := a.pub.Load(); c != nil {
		if p := a.ident.prov.Load(); p != nil {
			if id, err := provision.Load(p.Dir); err == nil {
				a.log.Info("provisioning: running as the kit's own thing", "thing", id.ThingName,
					"certificate_id", id.CertificateID, "not_after", id.NotAfter.UTC().Format(time.RFC3339))
			}
			if provision.HasPrevious(*p) {
				// Restarted after a renewal, before the new certificate
				// connected: still go back if the broker refuses it.
				go a.watchRenewed(*p, c.v)
			}
		}
		return
	}
	if !a.cfg.Provisioning.Enabled() {
		return
	}
	a.log.Info("provisioning: the kit has no identity yet; onboarding with the claim certificate while the sensors run",
		"template", a.cfg.Provisioning.Template, "claim_cert_file", a.cfg.Provisioning.ClaimCertFile)
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.onboardLoop(ctx)
	}()
}

// onboardLoop onboards, with backoff, until it succeeds or ctx ends, then
// starts delivery under the new identity.
func (a *Agent) onboardLoop(ctx context.Context) {
	bo := jitterBackoff{min: a.ident.retryMin, max: a.ident.retryMax}
	if bo.min <= 0 {
		bo.min, bo.max = onboardRetryMin, onboardRetryMax
	}
	for {
		a.ident.progress.Store(time.Now().UnixNano())
		a.lifecycle.Lock()
		cfg := a.cfg
		delivering := a.pub.Load() != nil
		a.lifecycle.Unlock()
		if delivering || !cfg.Provisioning.Enabled() {
			// A reload gave the kit certificate files of its own, or
			// turned provisioning off: nothing left to onboard.
			return
		}
		id, err := a.onboardOnce(ctx, cfg)
		if err == nil {
			a.log.Info("provisioning: identity made; delivering as the thing", "thing", id.ThingName)
			if a.startProvisioned() {
				return
			}
			err = errors.New("delivery could not start with the new identity")
		}
		if ctx.Err() != nil {
			return
		}
		wait := bo.next()
		a.log.Error("provisioning failed; readings are kept and delivered once the kit has its identity",
			"err", err, "retry_in", wait.Round(time.Second))
		if !a.sleepProgress(ctx, wait) {
			return
		}
	}
}

// onboardTimeout bounds one attempt: a connect, two requests of
// connect_timeout and 30 s each, with room to spare.
const onboardTimeout = 5 * time.Minute

// onboardOnce is one bounded attempt. The loop shows progress every second
// meanwhile: an attempt is bounded, so the watchdog need not restart a kit
// waiting on a slow broker.
func (a *Agent) onboardOnce(ctx context.Context, cfg *config.Config) (provision.Identity, error) {
	octx, cancel := context.WithTimeout(ctx, onboardTimeout)
	defer cancel()
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			a.ident.progress.Store(time.Now().UnixNano())
			select {
			case <-octx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return provision.Onboard(octx, cfg.Provisioning, cfg.MQTT, provision.Options{Log: a.deps.Log, Sources: a.ident.sources, Failpoint: a.ident.failpoint})
}

// startProvisioned starts delivery with the identity now in
// provisioning.dir, unless one runs already or the agent is stopping.
func (a *Agent) startProvisioned() bool {
	a.lifecycle.Lock()
	defer a.lifecycle.Unlock()
	if a.identityCtx().Err() != nil || a.pub.Load() != nil {
		return true
	}
	d, err := a.buildDelivery(a.cfg)
	if err != nil || d.pub == nil {
		a.log.Error("provisioning: delivery with the new identity", "err", err)
		return false
	}
	a.startDelivery(d)
	a.certs = certsHash(a.cfg)
	a.applyJobSettings(a.cfg)
	return true
}

// sleepProgress waits d, showing the watchdog it is alive.
func (a *Agent) sleepProgress(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			a.ident.progress.Store(time.Now().UnixNano())
			return true
		case <-tick.C:
			a.ident.progress.Store(time.Now().UnixNano())
		}
	}
}

// deliveryProgress is the watchdog's delivery probe: the running output's
// loop (HTTPS or the publisher), or the onboarding loop while there is no
// publisher yet.
func (a *Agent) deliveryProgress() time.Time {
	if c := a.https.Load(); c != nil {
		return c.v.Progress()
	}
	if c := a.pub.Load(); c != nil {
		return c.v.Progress()
	}
	return time.Unix(0, a.ident.progress.Load())
}

// identityFor fills in cfg's provisioned identity for a delivery: ok false
// (and no error) while the kit has none yet.
func identityFor(cfg *config.Config) (*config.Config, bool, error) {
	return cfg.WithIdentity()
}

// addRenewal hooks renewal onto a provisioned kit's connections.
func (a *Agent) addRenewal(pub *publisher.Publisher, cfg *config.Config) {
	p := cfg.Provisioning
	if !p.Enabled() {
		return
	}
	if id, err := provision.Load(p.Dir); err != nil || id.CertFile != cfg.MQTT.CertFile {
		return // the config names its own certificate files
	}
	a.ident.prov.Store(&p)
	pub.OnConnect(func(ctx context.Context, s *publisher.Session) { a.renewOnConnect(ctx, s, p) })
}

// renewOnConnect runs on every connection of a provisioned kit. A renewed
// identity that connects is confirmed (the old one dropped); a certificate
// due for renewal is renewed over this connection, retried with backoff
// while it lasts; success restarts delivery so the next connection uses
// the new certificate.
func (a *Agent) renewOnConnect(ctx context.Context, s *publisher.Session, p provision.Config) {
	if provision.HasPrevious(p) {
		if err := provision.Confirm(p); err != nil {
			a.log.Warn("provisioning: the previous identity was not removed", "err", err)
		} else {
			a.log.Info("provisioning: the renewed certificate connected; the previous one is no longer kept")
		}
	}
	bo := jitterBackoff{min: a.ident.renewRetryMin, max: renewRetryMax}
	if bo.min <= 0 {
		bo.min = renewRetryMin
	}
	for {
		id, err := provision.Load(p.Dir)
		if err != nil || !p.RenewalDue(id, time.Now()) {
			return
		}
		if r := a.ident.restored.Load(); r != 0 && time.Since(time.Unix(0, r)) < renewRetryMax {
			a.log.Warn("provisioning: renewal due but paused: the broker refused the last renewed certificate",
				"not_after", id.NotAfter.UTC().Format(time.RFC3339), "paused_until", time.Unix(0, r).Add(renewRetryMax).UTC().Format(time.RFC3339))
			return
		}
		a.log.Info("provisioning: certificate expires within provisioning.renew_before; renewing",
			"not_after", id.NotAfter.UTC().Format(time.RFC3339), "renew_before", p.RenewBefore)
		_, err = provision.Renew(ctx, s, p, provision.Options{Log: a.deps.Log, Sources: a.ident.sources})
		if err == nil {
			go a.restartDelivery("certificate renewed")
			return
		}
		if ctx.Err() != nil {
			return
		}
		wait := bo.next()
		a.log.Error("provisioning: certificate renewal failed; the current certificate stays in use",
			"err", err, "not_after", id.NotAfter.UTC().Format(time.RFC3339), "retry_in", wait.Round(time.Second))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// restartDelivery replaces the running delivery with one built afresh
// (the new certificate is read at its first connect), then watches that
// connect: if the broker refuses the renewed certificate, the previous
// identity is put back.
func (a *Agent) restartDelivery(why string) {
	a.lifecycle.Lock()
	if a.identityCtx().Err() != nil {
		a.lifecycle.Unlock()
		return
	}
	d, err := a.buildDelivery(a.cfg)
	if err != nil || d.pub == nil {
		a.lifecycle.Unlock()
		a.log.Error("provisioning: delivery not restarted; the running connection keeps the certificate it has", "why", why, "err", err)
		return
	}
	a.pub.Load().stop()
	a.startDelivery(d)
	a.certs = certsHash(a.cfg)
	p := a.cfg.Provisioning
	a.lifecycle.Unlock()
	a.log.Info("provisioning: connection restarted", "why", why)
	go a.watchRenewed(p, d.pub)
}

// renewedRefusals is how many refused connects of a renewed certificate,
// before it ever connected, put the previous one back.
const renewedRefusals = 3

func (a *Agent) watchRenewed(p provision.Config, pub *publisher.Publisher) {
	ctx := a.identityCtx()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	refused, seen, last := 0, int64(0), ""
	for provision.HasPrevious(p) {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st := pub.Stats()
		if st.Connected {
			return // the hook confirms
		}
		if st.ConnectFailures > seen {
			seen, last = st.ConnectFailures, st.LastError
			if isRefusal(last) {
				refused++
			} else {
				refused = 0 // offline, not refused: keep waiting
			}
		}
		if refused >= renewedRefusals {
			if err := provision.Restore(p); err != nil {
				a.log.Error("provisioning: the renewed certificate is refused and the previous one could not be restored", "err", err)
				return
			}
			a.ident.restored.Store(time.Now().UnixNano())
			a.log.Error("provisioning: the broker refuses the renewed certificate; back to the previous one", "last_error", last)
			a.restartDelivery("renewed certificate refused")
			return
		}
	}
}

func isRefusal(s string) bool {
	return strings.Contains(s, publisher.ErrCertRejected.Error()) || strings.Contains(s, publisher.ErrNotAuthorized.Error())
}

// identityState adds the identity's dates to the shadow's agent section:
// the previous certificate's expiry while a renewal keeps it.
func (a *Agent) identityState(st *shadow.State) {
	p := a.ident.prov.Load()
	if p == nil || !provision.HasPrevious(*p) { // a stat, at each report
		return
	}
	if id, err := provision.Load(p.Dir); err == nil {
		st.Agent.CertPreviousExpires = id.PreviousNotAfter
	}
}

// jitterBackoff draws each wait between min and a ceiling that doubles up
// to max (like the publisher's).
type jitterBackoff struct {
	min, max, ceiling time.Duration
}

func (b *jitterBackoff) next() time.Duration {
	if b.ceiling < b.min {
		b.ceiling = b.min
	}
	d := b.min + time.Duration(rand.Int64N(int64(b.ceiling-b.min)+1))
	b.ceiling = min(2*b.ceiling, b.max)
	return d
}
