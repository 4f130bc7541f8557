package publisher

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/kitd-dev/kitd/internal/safefile"
)

// User names and passwords, for brokers that authenticate users rather
// than (or besides) client certificates: RabbitMQ's MQTT plugin, NATS,
// EMQX, a Mosquitto with a password file. The password lives in its own
// file with the rules of a private key, so the config can be shared,
// printed (`kitd config check`) and logged: it names the file, never the
// secret.

// maxPasswordBytes bounds password_file: MQTT carries at most 65535 bytes,
// and no real password is near that.
const maxPasswordBytes = 65535

// passwordRules: a password is read like a private key.
var passwordRules = safefile.Rules{Max: maxPasswordBytes + 2, Trusted: true, Secret: true}

// readPassword returns the password in path: its content without one
// trailing newline (echo and editors add it). Errors name the field and
// the file and never quote the content.
func readPassword(path string) ([]byte, error) {
	b, err := safefile.Read(path, passwordRules)
	if err != nil {
		return nil, fmt.Errorf("password_file: %w", err)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	switch {
	case len(b) == 0:
		return nil, fmt.Errorf("password_file: %s is empty", path)
	case len(b) > maxPasswordBytes:
		return nil, fmt.Errorf("password_file: %s holds more than MQTT's %d bytes", path, maxPasswordBytes)
	case bytes.IndexByte(b, '\n') >= 0:
		// A second line is a mistake (two passwords, a comment), and
		// sending it would fail in a way the broker will not explain.
		return nil, fmt.Errorf("password_file: %s has more than one line: the password is the file's only line", path)
	}
	return b, nil
}

// validateCredentials checks username and password_file's settings (the
// file itself is read by the files part).
func (c Config) validateCredentials(b *broker) []error {
	var errs []error
	switch {
	case len(c.Username) > 65535:
		errs = append(errs, errors.New("username: longer than MQTT's 65535 bytes"))
	case !utf8.ValidString(c.Username) || strings.ContainsRune(c.Username, 0):
		errs = append(errs, errors.New("username: must be UTF-8 without NUL characters (MQTT 3.1.1)"))
	}
	if c.PasswordFile != "" {
		if c.Username == "" {
			errs = append(errs, errors.New("password_file: needs mqtt.username (MQTT sends no password without a user name)"))
		}
		if b != nil && !b.tls {
			errs = append(errs, fmt.Errorf("password_file: would be sent in the clear over %s://: use a TLS broker (tls://, ssl:// or mqtts://)", b.scheme))
		}
	}
	if c.Username != "" && (c.CertFile == "") != (c.KeyFile == "") {
		errs = append(errs, errors.New("cert_file, key_file: set both (mutual TLS beside the user name) or neither (the user name and password only)"))
	}
	return errs
}

// setCredentials puts the user name and the password, read again so a
// rotated password is used without a restart, into a connection's options.
// A password file that no longer reads keeps the last good password, as
// the TLS files do.
func (p *Publisher) setCredentials(o *mqtt.ClientOptions) {
	if p.cfg.Username == "" {
		return
	}
	o.SetUsername(p.cfg.Username)
	if p.cfg.PasswordFile == "" {
		return
	}
	if pw, err := readPassword(p.cfg.PasswordFile); err != nil {
		p.log.Error("the password file no longer reads; using the password read before", "err", err)
	} else {
		p.password = pw
	}
	o.SetPassword(string(p.password))
}
