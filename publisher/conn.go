package publisher

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// conn is one MQTT connection: a fresh paho client that lives exactly as
// long as its network connection. paho never reconnects it (AutoReconnect
// off): a resumed paho session can report a publish complete that never
// arrived (paho #563, #458), so every new connection starts clean and the
// buffer, not paho, resends.
type conn struct {
	client mqtt.Client
	up     time.Time

	lost     chan struct{} // closed once the connection is over
	lostOnce sync.Once
	lostErr  error // set before lost is closed

	mu sync.Mutex
	nc net.Conn // the raw connection, to cut it under paho

	// lastTopic is the topic of the latest publish sent, for explaining a
	// broker that hangs up right after one.
	lastTopic atomic.Pointer[string]
}

func (c *conn) markLost(err error) {
	c.lostOnce.Do(func() {
		if err == nil {
			err = errors.New("connection closed")
		}
		c.lostErr = err
		close(c.lost)
	})
}

// err is why the connection ended; only valid once lost is closed.
func (c *conn) err() error {
	<-c.lost
	return c.lostErr
}

func (c *conn) isLost() bool {
	select {
	case <-c.lost:
		return true
	default:
		return false
	}
}

// kill ends the connection without a DISCONNECT, as a dead network would:
// the broker publishes the Last Will, which is the truth when we gave up on
// the connection (acks stopped). paho sees a read error and stops its
// workers on its own.
func (c *conn) kill(err error) {
	c.markLost(err)
	c.mu.Lock()
	nc := c.nc
	c.mu.Unlock()
	if nc != nil {
		nc.Close()
	}
}

func (c *conn) setNet(nc net.Conn) {
	c.mu.Lock()
	c.nc = nc
	c.mu.Unlock()
}

func (c *conn) notePublish(topic string) { c.lastTopic.Store(&topic) }

func (c *conn) published() (string, bool) {
	t := c.lastTopic.Load()
	if t == nil {
		return "", false
	}
	return *t, true
}

// connect makes one connection attempt, bounded by connect_timeout and ctx.
func (p *Publisher) connect(ctx context.Context) (*conn, error) {
	var tlsCfg *tls.Config
	if p.broker.tls {
		// Read the files again so a certificate renewed on disk is used
		// without a restart; a broken renewal keeps the last good set.
		if f, err := loadTLSFiles(p.cfg.CAFile, p.cfg.CertFile, p.cfg.KeyFile, p.cfg.Username != ""); err != nil {
			p.log.Error("TLS files no longer load; using the ones loaded before", "err", err)
		} else {
			p.tls = f
		}
		p.checkCert(p.tls)
		tlsCfg = p.tls.config(p.broker.host, p.cfg.ALPN)
	}
	dialCtx, cancel := context.WithTimeout(ctx, p.cfg.ConnectTimeout)
	defer cancel()

	c := &conn{lost: make(chan struct{})}
	o := mqtt.NewClientOptions().
		AddBroker(p.broker.url()).
		SetClientID(p.device).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetResumeSubs(false).
		// Handlers run on their own goroutines, so a slow one cannot stall
		// paho's reader (paho #208, #473).
		SetOrderMatters(false).
		// Explicit 3.1.1: otherwise a failed attempt is silently retried
		// as 3.1, doubling the attempts a refusing broker sees.
		SetProtocolVersion(4).
		SetKeepAlive(p.cfg.Keepalive).
		SetPingTimeout(min(10*time.Second, p.cfg.Keepalive)).
		SetConnectTimeout(p.cfg.ConnectTimeout).
		// Bounds a Publish blocked on paho's outbound queue.
		SetWriteTimeout(p.cfg.ackTimeout()).
		SetCustomOpenConnectionFn(func(*url.URL, mqtt.ClientOptions) (net.Conn, error) {
			nc, err := p.dial(dialCtx, tlsCfg)
			if err == nil {
				c.setNet(nc)
			}
			return nc, err
		}).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) { c.markLost(err) })
	if p.statusTopic != "" { // Dial's one-off connections have no Will
		// QoS 1: AWS IoT drops a connection whose Will asks for QoS 2.
		o.SetBinaryWill(p.statusTopic, offlinePayload, 1, p.cfg.StatusRetain)
	}
	p.setCredentials(o)
	c.client = mqtt.NewClient(o)

	tok := c.client.Connect()
	tick := time.NewTicker(p.opt.tick)
	defer tick.Stop()
	for {
		select {
		case <-tok.Done():
			if err := tok.Error(); err != nil {
				c.kill(err)
				return nil, p.markDropped(p.explainConnect(err))
			}
			c.up = time.Now()
			return c, nil
		case <-dialCtx.Done():
			c.kill(dialCtx.Err())
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("connect to %s: no CONNACK within connect_timeout %s", p.cfg.Broker, p.cfg.ConnectTimeout)
		case <-tick.C:
			p.touch()
		}
	}
}

// dial opens the network connection paho runs MQTT over. It is ours rather
// than paho's so it honours ctx, sends SNI and ALPN, and can be cut.
func (p *Publisher) dial(ctx context.Context, tlsCfg *tls.Config) (net.Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", p.broker.addr)
	if err != nil {
		return nil, err
	}
	if tlsCfg == nil {
		return nc, nil
	}
	tc := tls.Client(nc, tlsCfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	if p.cfg.ALPN && tc.ConnectionState().NegotiatedProtocol != alpnAWS {
		// AWS IoT on 443 serves HTTPS to clients without the protocol.
		p.log.Warn("the broker did not agree to ALPN "+alpnAWS+"; MQTT may fail on this port", "broker", p.cfg.Broker)
	}
	return tc, nil
}

// sameRejection keeps a certificate rejection's diagnosis across attempts.
// With TLS 1.3 the broker checks the client certificate after the client's
// handshake is done and says so in an alert before closing; when the client
// has already sent CONNECT, the kernel answers the unread bytes with a reset
// that can swallow the alert (seen under qemu, so on a slow Pi too), and
// the client reads only EOF. An EOF or reset at connect, with the same
// certificate that was rejected last time, is reported as that rejection,
// word for word, so the log (folded) and the status do not flip between
// two causes: it returns that rejection, or nil. Only Run's goroutine calls
// it.
func (p *Publisher) sameRejection(err error) error {
	cert := ""
	if p.tls != nil && p.tls.leaf != nil {
		cert = string(p.tls.leaf.Raw)
	}
	switch {
	case strings.Contains(err.Error(), "remote error: tls:"):
		p.rejectedCert = cert
	case p.rejectedCert != "" && p.rejectedCert == cert && p.rejectedErr != nil &&
		(errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || strings.HasSuffix(err.Error(), ": EOF")):
		return p.rejectedErr
	default:
		p.rejectedCert, p.rejectedErr = "", nil
	}
	return nil
}

// explainConnect names the likely cause of a failed connect: most failures
// in the field are configuration, and the raw error rarely says which part.
func (p *Publisher) explainConnect(err error) error {
	if same := p.sameRejection(err); same != nil {
		return same
	}
	var verr *tls.CertificateVerificationError
	var herr x509.HostnameError
	msg := err.Error()
	switch {
	case errors.As(err, &herr):
		return fmt.Errorf("connect to %s: the broker's certificate is not for host %q (check mqtt.broker): %w", p.cfg.Broker, p.broker.host, err)
	case errors.As(err, &verr):
		return fmt.Errorf("connect to %s: the broker's certificate does not verify against ca_file %s: %w", p.cfg.Broker, p.cfg.CAFile, err)
	case strings.Contains(msg, "remote error: tls:"):
		// TLS 1.2 reports it in the handshake; 1.3 on the first read.
		p.rejectedErr = fmt.Errorf("connect to %s: %w: the broker rejected the client certificate %s (issued by a CA it does not trust, expired or revoked, or on AWS IoT not registered and active): %w",
			p.cfg.Broker, ErrCertRejected, p.cfg.CertFile, err)
		return p.rejectedErr
	case p.cfg.Username != "" && (errors.Is(err, packets.ErrorRefusedNotAuthorised) || errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword)):
		return fmt.Errorf("connect to %s: %w: the broker refused user %q (check mqtt.username and the password in mqtt.password_file %s, and the user's permissions): %w",
			p.cfg.Broker, ErrNotAuthorized, p.cfg.Username, p.cfg.PasswordFile, err)
	case errors.Is(err, packets.ErrorRefusedNotAuthorised), errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword):
		return fmt.Errorf("connect to %s: %w: the broker refused client id %q (on AWS IoT: the certificate's policy must allow iot:Connect for it, and it must be attached to the thing): %w",
			p.cfg.Broker, ErrNotAuthorized, p.device, err)
	case errors.Is(err, packets.ErrorRefusedIDRejected):
		return fmt.Errorf("connect to %s: the broker rejected client id %q: %w", p.cfg.Broker, p.device, err)
	}
	return fmt.Errorf("connect to %s: %w", p.cfg.Broker, err)
}

// markDropped wraps ErrDroppedAtConnect around err when the broker closed
// the connection (EOF or reset, during the TLS handshake or before the
// CONNACK) and no certificate rejection explains it: what AWS IoT does to
// the first connection of a certificate issued by a CA registered for
// just-in-time provisioning (JITP/JITR) while it registers that
// certificate.
func (p *Publisher) markDropped(err error) error {
	if errors.Is(err, ErrCertRejected) {
		return err
	}
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || strings.HasSuffix(err.Error(), ": EOF") {
		return fmt.Errorf("%w: %w", ErrDroppedAtConnect, err)
	}
	return err
}
