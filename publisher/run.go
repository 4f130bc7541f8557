package publisher

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"time"
)

// Run owns the connection loop until ctx is done: connect, publish the
// online status, start the OnConnect hooks, deliver the buffer; on a lost
// connection back off and start again with a fresh client. When ctx ends
// it flushes what it can, publishes connected:false and disconnects, all
// within shutdown_timeout, waits for the hooks (within the same budget) and
// returns nil. It returns ErrRunTwice if called twice.
func (p *Publisher) Run(ctx context.Context) error {
	if !p.running.CompareAndSwap(false, true) {
		return ErrRunTwice
	}
	if !p.broker.tls {
		p.log.Warn("insecure: "+p.cfg.Broker+" is plain TCP without TLS; readings and the device identity are sent in the clear",
			"broker", p.cfg.Broker)
	}
	bo := backoff{s: p.opt.schedule(), rand: p.opt.rand}
	// lastUp is when the kit was last connected (or Run began): within
	// backoffPatience of it the waits stay short, so a kit is back within
	// seconds of its broker, and flapping connections never stretch the
	// pauses.
	lastUp := time.Now()
	var stopDeadline time.Time
	defer func() { p.waitHooks(stopDeadline) }()
	first, streak, jitp := true, false, false
	for {
		p.touch()
		if ctx.Err() != nil {
			stopDeadline = time.Now().Add(p.cfg.ShutdownTimeout)
			return nil
		}
		c, err := p.connect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				stopDeadline = time.Now().Add(p.cfg.ShutdownTimeout)
				return nil
			}
			p.setErr(err)
			p.failures.Add(1)
			if first && !jitp && errors.Is(err, ErrDroppedAtConnect) {
				// Once, at the first attempt, and at the floor of the
				// backoff: the certificate is registered by now.
				jitp = true
				p.log.Info("the broker closed the first connection before accepting it: on AWS IoT this is normal once for a certificate "+
					"issued by a CA registered for just-in-time provisioning (JITP/JITR), which registers it on this attempt; retrying", "err", err)
				if !p.sleep(ctx, bo.s.min) {
					stopDeadline = time.Now().Add(p.cfg.ShutdownTimeout)
					return nil
				}
				continue
			}
			// No attempt number or delay in the line: identical lines are
			// what the repeat filter folds.
			p.log.Warn("connect failed", "err", err)
			if !p.sleep(ctx, bo.next(time.Since(lastUp))) {
				stopDeadline = time.Now().Add(p.cfg.ShutdownTimeout)
				return nil
			}
			continue
		}
		if !first {
			p.reconnects.Add(1)
		}
		first = false
		deadline, lost := p.serve(ctx, c)
		lastUp = time.Now()
		if lost == nil {
			stopDeadline = deadline
			return nil
		}
		p.setErr(lost)
		lived := time.Since(c.up)
		if lived >= p.opt.stableAfter {
			bo.reset()
		}
		topic, published := c.published()
		switch {
		case p.oversized > 0:
			p.log.Warn("the broker closed the connection with a message larger than any it accepted still unacknowledged: "+
				"if this repeats, the message is probably over the broker's maximum packet size, not a policy problem",
				"bytes", p.oversized, "largest_accepted", p.maxAcked)
		case lived < p.opt.youngLoss && published && !errors.Is(lost, errAckTimeout):
			// AWS IoT answers a publish its policy denies by closing the
			// connection; nothing else tells us. Say so once per streak.
			if !streak {
				p.log.Error("the broker closed the connection right after a publish to "+topic+
					": on AWS IoT this usually means the policy does not allow iot:Publish on it",
					"topic", topic, "err", lost)
			}
			streak = true
		case lived >= p.opt.youngLoss:
			streak = false
		}
		p.log.Warn("connection lost", "err", lost)
		if !p.sleep(ctx, bo.next(time.Since(lastUp))) {
			stopDeadline = time.Now().Add(p.cfg.ShutdownTimeout)
			return nil
		}
	}
}

// serve runs one connection. It returns why the connection was lost, or
// nil when ctx ended (then with the deadline of the shutdown budget).
func (p *Publisher) serve(ctx context.Context, c *conn) (deadline time.Time, lost error) {
	sctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-c.lost:
			cancel()
		case <-sctx.Done():
		}
	}()
	s := &Session{p: p, c: c, ctx: sctx}
	p.connected.Store(true)
	defer p.connected.Store(false)
	p.session.Store(s)
	defer p.session.Store(nil)
	p.log.Info("connected", "broker", p.cfg.Broker, "client_id", p.device)

	// The shutdown budget counts from the stop itself, wherever it finds
	// the session.
	var stoppedAt atomic.Pointer[time.Time]
	defer context.AfterFunc(ctx, func() { t := time.Now(); stoppedAt.Store(&t) })()
	// A stop while the broker acknowledges connected:true must not skip
	// the flush: the kit is connected, and what the buffer holds goes out
	// as at any other stop. The PUBACK gets a tenth of the budget after
	// the stop (it normally takes milliseconds).
	octx, ocancel := context.WithCancel(context.WithoutCancel(ctx))
	defer ocancel()
	defer context.AfterFunc(ctx, func() { time.AfterFunc(p.cfg.ShutdownTimeout/10, ocancel) })()
	err := s.Publish(octx, p.statusTopic, onlinePayload(p.clk.Now()), p.cfg.StatusRetain)
	switch {
	case err == nil:
		p.startHooks(sctx, s)
		err = p.drain(ctx, c, stoppedAt.Load)
	case ctx.Err() != nil:
		err = errStopping
	}
	if errors.Is(err, errStopping) && !c.isLost() {
		return p.goodbye(c), nil
	}
	if err == nil || !c.isLost() {
		// Not a connection failure (e.g. the buffer failed to read): end
		// the connection anyway so the next one starts from a clean state.
		if err == nil {
			err = errors.New("delivery stopped")
		}
		c.kill(err)
	}
	if ctx.Err() != nil {
		return time.Now().Add(p.cfg.ShutdownTimeout), nil
	}
	return time.Time{}, c.err()
}

// goodbye publishes connected:false and disconnects, within what is left of
// the shutdown budget (the flush used most of it). A DISCONNECT makes the
// broker discard the Will, so the explicit message is what says offline.
func (p *Publisher) goodbye(c *conn) time.Time {
	budget := p.cfg.ShutdownTimeout / 5
	deadline := time.Now().Add(budget)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	s := &Session{p: p, c: c, ctx: context.Background()}
	if err := s.Publish(ctx, p.statusTopic, offlinePayload, p.cfg.StatusRetain); err != nil {
		p.log.Warn("could not publish connected:false before disconnecting; the broker's Last Will will say it instead", "err", err)
		// Without a DISCONNECT the broker publishes the Will for us.
		c.kill(err)
		return deadline
	}
	c.client.Disconnect(uint(min(budget, 250*time.Millisecond) / time.Millisecond))
	c.kill(errStopping)
	p.log.Info("disconnected", "broker", p.cfg.Broker, "delivered", p.delivered.Load())
	return deadline
}

func (p *Publisher) startHooks(ctx context.Context, s *Session) {
	p.hookMu.Lock()
	hooks := slices.Clone(p.hooks)
	p.hookMu.Unlock()
	for _, fn := range hooks {
		p.hookWG.Add(1)
		go func() {
			defer p.hookWG.Done()
			fn(ctx, s)
		}()
	}
}

// waitHooks waits for OnConnect hooks to return, until deadline.
func (p *Publisher) waitHooks(deadline time.Time) {
	done := make(chan struct{})
	go func() {
		p.hookWG.Wait()
		close(done)
	}()
	if deadline.IsZero() {
		deadline = time.Now().Add(p.cfg.ShutdownTimeout)
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		p.log.Warn("an OnConnect hook did not return within shutdown_timeout")
	}
}
