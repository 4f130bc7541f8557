package publisher

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/kitd-dev/kitd/datasize"
)

// BatchConfig is the mqtt.batch section: how readings are packed into
// messages.
type BatchConfig struct {
	// MaxReadings per message. 1 (the default) sends DESIGN.md's
	// one-reading form; more sends the batched form. At most
	// MaxBatchReadings. The shadow may change it live
	// (mqtt.batch.max_readings, see SetBatchMaxReadings).
	MaxReadings int `mapstructure:"max_readings"`
	// MaxBytes bounds a message's payload. Default 64KiB; at most 128KiB,
	// AWS IoT's payload limit (the topic is subtracted from it at run
	// time). A single reading larger than the limit is dropped and logged.
	MaxBytes datasize.Size `mapstructure:"max_bytes"`
	// MaxDelay lets live readings wait up to this long for company in a
	// batch: a batch goes when it holds MaxReadings, when the next reading
	// would cross MaxBytes, or MaxDelay after its first reading. 0 (the
	// default) sends whatever is there at once. At most MaxBatchDelay; no
	// effect with MaxReadings 1. The backlog after an outage never waits.
	MaxDelay time.Duration `mapstructure:"max_delay"`
}

// Config is the mqtt section of the config file.
type Config struct {
	// Broker is the broker URL: tls://, ssl:// or mqtts:// (mutual TLS),
	// or tcp:// (no TLS: local tests only, logged as insecure). A missing
	// port means 8883 (443 with ALPN) for TLS and 1883 for tcp.
	Broker string `mapstructure:"broker"`
	// ALPN offers the ALPN protocol "x-amzn-mqtt-ca", which AWS IoT
	// requires for MQTT on port 443.
	ALPN bool `mapstructure:"alpn"`
	// CAFile, CertFile and KeyFile are PEM files: the CA that signed the
	// broker's certificate, and the kit's client certificate and key. All
	// required for TLS; the key must not be readable by others.
	CAFile   string `mapstructure:"ca_file"`
	CertFile string `mapstructure:"cert_file"`
	KeyFile  string `mapstructure:"key_file"`
	// Username is sent in CONNECT for brokers that authenticate users
	// (RabbitMQ, most self-hosted brokers); AWS IoT uses the certificate.
	// With a user name, cert_file and key_file may be left empty: TLS
	// then verifies the broker only. Default "" (none).
	Username string `mapstructure:"username"`
	// PasswordFile holds the password (one line; a trailing newline is
	// not part of it), never the config itself. The same rules as
	// key_file: a regular file, not readable by others, not writable by
	// group or others. Read again at every connect. Needs Username and a
	// TLS broker. Default "" (no password).
	PasswordFile string `mapstructure:"password_file"`
	// Keepalive is the MQTT keepalive. Default 30s.
	Keepalive time.Duration `mapstructure:"keepalive"`
	// TelemetryTopic and StatusTopic; {device} is replaced by the device
	// id. Defaults kits/{device}/telemetry and kits/{device}/status.
	TelemetryTopic string `mapstructure:"telemetry_topic"`
	StatusTopic    string `mapstructure:"status_topic"`
	// AlertTopic carries the edge alerts (package alerts), one message
	// each, ahead of telemetry. Default kits/{device}/alerts.
	AlertTopic string `mapstructure:"alert_topic"`
	// MaxInflight is how many messages may await their PUBACK at once.
	// Default 10; at most 100 (AWS IoT's limit per connection).
	MaxInflight int `mapstructure:"max_inflight"`
	// MaxPublishRate bounds messages per second over the connection
	// (telemetry, status and shadow together). Default 100 (AWS IoT's
	// limit per connection); 0 means unlimited.
	MaxPublishRate int `mapstructure:"max_publish_rate"`
	// Batch packs readings into messages.
	Batch BatchConfig `mapstructure:"batch"`
	// StatusRetain publishes the status messages and the Last Will
	// retained, so a dashboard that subscribes later still learns whether
	// the kit is online. Default true; turn it off for a broker that
	// refuses retained messages.
	StatusRetain bool `mapstructure:"status_retain"`
	// ConnectTimeout bounds dialing, the TLS handshake and the CONNACK.
	// Default 20s.
	ConnectTimeout time.Duration `mapstructure:"connect_timeout"`
	// AckTimeout is how long a PUBACK may take before the connection is
	// considered wedged and replaced (paho resends unacknowledged QoS 1
	// only on reconnect). 0 (the default) means max(2×keepalive, 20s).
	AckTimeout time.Duration `mapstructure:"ack_timeout"`
	// MaxPacketBytes is the broker's largest accepted MQTT packet
	// (Mosquitto's max_packet_size, EMQX's max_packet_size); messages are
	// packed so that the whole PUBLISH packet (header, topic, payload)
	// fits. 0 (the default) means only batch.max_bytes bounds them. A
	// broker that closes the connection on an oversized packet is also
	// detected at run time, but that costs reconnects.
	MaxPacketBytes datasize.Size `mapstructure:"max_packet_bytes"`
	// ShutdownTimeout bounds the flush, the connected:false message and
	// the disconnect when the agent stops. Default 5s.
	ShutdownTimeout time.Duration `mapstructure:"shutdown_timeout"`
}

// Limits enforced by Validate.
const (
	// MaxPayload is AWS IoT's message size limit.
	MaxPayload = 128 * datasize.KiB
	// maxPublishOverhead is what a PUBLISH packet adds to its payload
	// besides the topic: fixed header (1), remaining length (up to 4),
	// topic length (2) and packet id (2).
	maxPublishOverhead = 9
	// minBatchBytes leaves room for at least one ordinary reading.
	minBatchBytes = 1 * datasize.KiB
	// MaxBatchReadings bounds batch.max_readings.
	MaxBatchReadings = 1000
	// MaxBatchDelay bounds batch.max_delay: beyond an hour a reading is no
	// longer live, and a typo (60 for 60s is 60 ns, 60h is days) shows.
	MaxBatchDelay = time.Hour
	// MaxInflightLimit is AWS IoT's limit of unacknowledged QoS 1
	// publishes per connection.
	MaxInflightLimit = 100
	// maxKeepalive is the largest keepalive MQTT can carry (16-bit seconds).
	maxKeepalive = 65535 * time.Second
)

// DefaultConfig returns the defaults documented on Config. Broker and the
// files have no default: they are the kit's identity.
func DefaultConfig() Config {
	return Config{
		Keepalive:       30 * time.Second,
		TelemetryTopic:  "kits/{device}/telemetry",
		StatusTopic:     "kits/{device}/status",
		AlertTopic:      "kits/{device}/alerts",
		MaxInflight:     10,
		MaxPublishRate:  100,
		Batch:           BatchConfig{MaxReadings: 1, MaxBytes: 64 * datasize.KiB},
		StatusRetain:    true,
		ConnectTimeout:  20 * time.Second,
		ShutdownTimeout: 5 * time.Second,
	}
}

// Validate checks form and files: the broker URL, the TLS files (present,
// readable, parseable, certificate and key matching, key not readable by
// others) and every limit. Each error starts with the field's key relative
// to the mqtt section. Key material never appears in an error.
func (c Config) Validate() error { return c.validate(true, true) }

// ValidateSettings is Validate without reading the TLS files (a TLS broker
// still needs all three named), for checking a kit's config on a machine
// that does not hold its files.
func (c Config) ValidateSettings() error { return c.validate(true, false) }

// ValidateFiles is the part of Validate that reads the TLS files; it
// checks nothing when the broker is not a valid TLS URL.
func (c Config) ValidateFiles() error { return c.validate(false, true) }

func (c Config) validate(settings, files bool) error {
	var errs []error
	fail := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	b, err := parseBroker(c.Broker, c.ALPN)
	if err != nil && settings {
		errs = append(errs, err)
	}
	if c.ALPN && b != nil && !b.tls && settings {
		fail("alpn", "needs a TLS broker (tls://, ssl:// or mqtts://), not %s://", b.scheme)
	}
	if b != nil && b.tls {
		switch {
		case files:
			// Also says which of the three is not set.
			if _, err := loadTLSFiles(c.CAFile, c.CertFile, c.KeyFile, c.Username != ""); err != nil {
				errs = append(errs, err)
			}
		case settings:
			for _, f := range []struct{ key, path string }{{"ca_file", c.CAFile}, {"cert_file", c.CertFile}, {"key_file", c.KeyFile}} {
				if f.path == "" && !(c.Username != "" && f.key != "ca_file" && c.CertFile == "" && c.KeyFile == "") {
					fail(f.key, "required for a TLS broker")
				}
			}
		}
	}
	if files && c.PasswordFile != "" {
		if _, err := readPassword(c.PasswordFile); err != nil {
			errs = append(errs, err)
		}
	}
	if settings {
		errs = append(errs, c.validateCredentials(b)...)
	}
	if !settings {
		return errors.Join(errs...)
	}
	switch {
	case c.Keepalive <= 0:
		fail("keepalive", "must be positive")
	case c.Keepalive < time.Second:
		fail("keepalive", "must be at least 1s (MQTT counts it in seconds)")
	case c.Keepalive > maxKeepalive:
		fail("keepalive", "must be at most %s", maxKeepalive)
	}
	if err := validateTopic(c.TelemetryTopic); err != nil {
		fail("telemetry_topic", "%v", err)
	} else if err := validateBasicIngest(c.TelemetryTopic); err != nil {
		fail("telemetry_topic", "%v", err)
	}
	if err := validateTopic(c.AlertTopic); err != nil {
		fail("alert_topic", "%v", err)
	} else if err := validateBasicIngest(c.AlertTopic); err != nil {
		fail("alert_topic", "%v", err)
	}
	if err := validateTopic(c.StatusTopic); err != nil {
		fail("status_topic", "%v", err)
	} else if strings.HasPrefix(c.StatusTopic, "$aws/") {
		fail("status_topic", "AWS IoT ignores a Last Will on $aws/ topics: use e.g. kits/{device}/status and an IoT rule that republishes it to the shadow")
	}
	if c.MaxInflight < 1 || c.MaxInflight > MaxInflightLimit {
		fail("max_inflight", "must be between 1 and %d (AWS IoT allows %d unacknowledged QoS 1 messages), got %d", MaxInflightLimit, MaxInflightLimit, c.MaxInflight)
	}
	if c.MaxPublishRate < 0 {
		fail("max_publish_rate", "must not be negative (0 means unlimited)")
	}
	if err := validateMaxReadings(c.Batch.MaxReadings); err != nil {
		fail("batch.max_readings", "%v", err)
	}
	if c.Batch.MaxDelay < 0 || c.Batch.MaxDelay > MaxBatchDelay {
		fail("batch.max_delay", "must be between 0 (send at once) and %s, got %s", MaxBatchDelay, c.Batch.MaxDelay)
	}
	if c.MaxPacketBytes < 0 || (c.MaxPacketBytes > 0 && c.MaxPacketBytes < minBatchBytes+maxPublishOverhead) {
		fail("max_packet_bytes", "must be 0 (no limit beyond batch.max_bytes) or at least %d bytes", minBatchBytes+maxPublishOverhead)
	}
	switch {
	case c.Batch.MaxBytes < minBatchBytes:
		fail("batch.max_bytes", "must be at least %s", minBatchBytes)
	case c.Batch.MaxBytes > MaxPayload:
		fail("batch.max_bytes", "must be at most %s (AWS IoT's payload limit), got %s", MaxPayload, c.Batch.MaxBytes)
	}
	if c.ConnectTimeout <= 0 {
		fail("connect_timeout", "must be positive")
	}
	if c.AckTimeout < 0 {
		fail("ack_timeout", "must not be negative (0 means max(2×keepalive, 20s))")
	}
	if c.ShutdownTimeout <= 0 {
		fail("shutdown_timeout", "must be positive")
	}
	return errors.Join(errs...)
}

// ackTimeout resolves AckTimeout's default.
func (c Config) ackTimeout() time.Duration {
	if c.AckTimeout > 0 {
		return c.AckTimeout
	}
	return max(2*c.Keepalive, 20*time.Second)
}

func validateMaxReadings(n int) error {
	if n < 1 || n > MaxBatchReadings {
		return fmt.Errorf("must be between 1 and %d, got %d", MaxBatchReadings, n)
	}
	return nil
}

func validateTopic(t string) error {
	switch {
	case t == "":
		return errors.New("must not be empty")
	case strings.ContainsAny(t, "+#"):
		return fmt.Errorf("%q: wildcards + and # are for subscriptions, not for publishing", t)
	case strings.ContainsRune(t, 0):
		return fmt.Errorf("%q: contains a NUL character", t)
	case len(t) > 256:
		// AWS IoT's limit is 256 bytes; {device} adds to it later.
		return errors.New("longer than 256 bytes")
	}
	return nil
}

// broker is a parsed broker URL.
type broker struct {
	scheme string
	host   string // without port, for SNI and verification
	addr   string // host:port
	tls    bool
}

// url is the form paho dials: scheme kept (paho only looks at it to pick a
// transport, and our own dialer replaces that), port always present.
func (b *broker) url() string { return b.scheme + "://" + b.addr }

func parseBroker(s string, alpn bool) (*broker, error) {
	if s == "" {
		return nil, errors.New("broker: required (e.g. tls://xxxx-ats.iot.eu-west-1.amazonaws.com:8883)")
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("broker: %q is not a URL", s)
	}
	b := &broker{scheme: strings.ToLower(u.Scheme)}
	port := ""
	switch b.scheme {
	case "tls", "ssl", "mqtts":
		b.tls = true
		port = "8883"
		if alpn {
			port = "443"
		}
	case "tcp":
		port = "1883"
	default:
		return nil, fmt.Errorf("broker: %q: scheme must be tls://, ssl://, mqtts:// or tcp://", s)
	}
	if u.User != nil {
		return nil, fmt.Errorf("broker: user info in the URL is not used: set mqtt.username, and the password in mqtt.password_file")
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("broker: %q: want scheme://host:port with no path or query", s)
	}
	b.host = u.Hostname()
	if b.host == "" {
		return nil, fmt.Errorf("broker: %q: missing host", s)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("broker: %q: port must be 1..65535", s)
		}
		port = p
	}
	b.addr = net.JoinHostPort(b.host, port)
	return b, nil
}
