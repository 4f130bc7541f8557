package provision

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kitd-dev/kitd/internal/safefile"
	"github.com/kitd-dev/kitd/publisher"
)

// tokenLife is how long an ownership token is used after it was issued:
// AWS IoT's expire after an hour, and a certificate never registered is
// deleted with its token, so an expired one is replaced, not orphaned.
const tokenLife = 50 * time.Minute

// timeFormat stamps the state files' headers.
const timeFormat = time.RFC3339

// Options are the seams of Onboard and Renew.
type Options struct {
	Log     *slog.Logger
	Sources Sources
	// Now is the wall clock (token ages); default time.Now.
	Now func() time.Time
	// Failpoint, when set, is called at each FP* point; an error stops
	// the operation there, as a crash would (tests only).
	Failpoint func(name string) error

	plainLog *slog.Logger // Log as given, for publisher.Dial
}

func (o Options) withDefaults() Options {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	// The lifecycle's rule (agent/doc.go): a part tags its own lines; the
	// claim connection's publisher tags its own, from the plain logger.
	o.plainLog = o.Log
	o.Log = o.Log.With("component", "provision")
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Failpoint == nil {
		o.Failpoint = func(string) error { return nil }
	}
	return o
}

// ClaimClientID is the MQTT client id of the claim connection:
// "claim-" and the board's serial (the claim policy allows client/claim-*),
// so two kits onboarding at once do not take each other's connection.
func ClaimClientID(s Sources) string {
	serial, err := s.Serial()
	if err != nil {
		serial, _ = s.withDefaults().Hostname()
	}
	id := "claim-" + strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '-'
	}, serial)
	if len(id) > 128 {
		id = id[:128]
	}
	return id
}

// Onboard gets the kit its own identity by fleet provisioning, over one
// connection to mqttCfg's broker made with the claim certificate, and
// returns it. It resumes whatever an earlier attempt left in c.Dir (see
// the package documentation) and does one attempt: the caller retries.
// If c.Dir already holds an identity it returns that.
func Onboard(ctx context.Context, c Config, mqttCfg publisher.Config, opts Options) (Identity, error) {
	opts = opts.withDefaults()
	if id, err := Load(c.Dir); err == nil || !errors.Is(err, ErrNoIdentity) {
		if err == nil {
			// A crash after the identity was written left pending.pem.
			_ = removeStalePending(c.Dir, "onboard")
		}
		return id, err
	}
	params, err := opts.Sources.Expand(c.params())
	if err != nil {
		return Identity{}, err
	}
	if err := ensureDir(c.Dir); err != nil {
		return Identity{}, err
	}
	p, err := loadPending(c.Dir, "onboard", opts)
	if err != nil {
		return Identity{}, err
	}
	clientID := ClaimClientID(opts.Sources)
	mqttCfg.CertFile, mqttCfg.KeyFile = c.ClaimCertFile, c.ClaimKeyFile
	conn, err := publisher.Dial(ctx, mqttCfg, clientID, opts.plainLog)
	if err != nil {
		return Identity{}, fmt.Errorf("connect with the claim certificate %s: %w", c.ClaimCertFile, err)
	}
	defer conn.Close()
	opts.Log.Info("provisioning: connected with the claim certificate", "client_id", clientID, "template", c.Template)
	reg, err := certifyAndRegister(ctx, conn, c, p, params, opts)
	if err != nil {
		return Identity{}, err
	}
	id, err := commit(c.Dir, p, reg, c.Template, opts, false)
	if err != nil {
		return Identity{}, err
	}
	opts.Log.Info("provisioning: onboarded", "thing", id.ThingName, "certificate_id", id.CertificateID,
		"not_after", id.NotAfter.UTC().Format(timeFormat))
	return id, nil
}

// loadPending returns the onboarding or renewal under way in dir, or
// starts one: a fresh key and CSR, written before anything is asked of
// AWS so that every retry, whatever crashed, uses the same key.
func loadPending(dir, purpose string, opts Options) (*state, error) {
	path := filepath.Join(dir, pendingFile)
	p, err := readState(path)
	switch {
	case err == nil && p.key != nil && p.csr != nil && p.headers["Purpose"] == purpose:
		opts.Log.Info("provisioning: resuming", "purpose", purpose, "step", p.step())
		return p, nil
	case err == nil:
		opts.Log.Warn("provisioning: starting over: "+path+" is from another operation or incomplete", "purpose", p.headers["Purpose"])
	case !errors.Is(err, os.ErrNotExist):
		// Unreadable (bad permissions, garbage): say so, and start over
		// rather than stay stuck; nothing was registered with its key.
		opts.Log.Warn("provisioning: starting over: "+path+" is unusable", "err", err)
	}
	p, err = newKeyState("kitd")
	if err != nil {
		return nil, err
	}
	p.headers = map[string]string{"Purpose": purpose, "Created": opts.Now().UTC().Format(timeFormat)}
	if err := writeAtomic(dir, pendingFile, p.encode(blockPending)); err != nil {
		return nil, err
	}
	if err := opts.Failpoint(FPAfterKey); err != nil {
		return nil, err
	}
	return p, nil
}

func (s *state) step() string {
	if s.cert != nil {
		return "certificate"
	}
	return "key"
}

// certifyAndRegister gets a certificate for p's key (unless p holds one
// whose token is still good), records it in pending.pem before using the
// token, and runs the template.
func certifyAndRegister(ctx context.Context, c Conn, cfg Config, p *state, params map[string]string, opts Options) (*registered, error) {
	for attempt := 0; ; attempt++ {
		if p.cert == nil || tokenExpired(p, opts.Now()) {
			cr, err := createFromCSR(ctx, c, p)
			if err != nil {
				return nil, err
			}
			p.cert = cr.cert
			p.headers["Certificate-Id"] = sanitizeHeader(cr.CertificateID)
			p.headers["Ownership-Token"] = sanitizeHeader(cr.OwnershipToken)
			p.headers["Token-Time"] = opts.Now().UTC().Format(timeFormat)
			// Before RegisterThing: a crash from here on reuses this
			// certificate rather than orphaning it for a second one.
			if err := writeAtomic(cfg.Dir, pendingFile, p.encode(blockPending)); err != nil {
				return nil, err
			}
			opts.Log.Info("provisioning: certificate issued", "certificate_id", cr.CertificateID)
			if err := opts.Failpoint(FPAfterCertificate); err != nil {
				return nil, err
			}
		}
		reg, err := register(ctx, c, cfg.Template, p.headers["Ownership-Token"], params)
		if err == nil {
			if err := opts.Failpoint(FPBeforeIdentity); err != nil {
				return nil, err
			}
			return reg, nil
		}
		if !tokenRejected(err) || attempt > 0 {
			return nil, err
		}
		// Expired or used: AWS deletes a certificate never registered
		// with its token, so a new one from the same CSR orphans nothing.
		opts.Log.Warn("provisioning: ownership token refused; asking for a new certificate for the same key", "err", err)
		p.cert = nil
	}
}

func tokenExpired(p *state, now time.Time) bool {
	t, err := time.Parse(timeFormat, p.headers["Token-Time"])
	return err != nil || now.Sub(t) > tokenLife || now.Before(t.Add(-time.Hour))
}

// commit writes identity.pem (the commit point: one rename), then removes
// pending.pem. keepPrevious first saves the identity being replaced as
// previous.pem (a renewal keeps it until the new one has connected).
func commit(dir string, p *state, reg *registered, template string, opts Options, keepPrevious bool) (Identity, error) {
	if err := checkThing(reg.ThingName); err != nil {
		return Identity{}, err
	}
	id := &state{
		headers: map[string]string{
			"Thing-Name":     reg.ThingName,
			"Certificate-Id": p.headers["Certificate-Id"],
			"Template":       template,
			"Created":        opts.Now().UTC().Format(timeFormat),
		},
		cert: p.cert, key: p.key, keyDER: p.keyDER,
	}
	if keepPrevious {
		old, err := safefile.Read(filepath.Join(dir, identityFile), secretFile)
		if err != nil {
			return Identity{}, err
		}
		if err := writeAtomic(dir, previousFile, old); err != nil {
			return Identity{}, err
		}
	}
	if err := writeAtomic(dir, identityFile, id.encode(blockIdentity)); err != nil {
		return Identity{}, err
	}
	if err := opts.Failpoint(FPAfterIdentity); err != nil {
		return Identity{}, err
	}
	if err := remove(dir, pendingFile); err != nil {
		opts.Log.Warn("provisioning: pending.pem not removed; it is ignored", "err", err)
	}
	return Load(dir)
}

func checkThing(name string) error {
	if name == "" || len(name) > 128 || strings.ContainsAny(name, "\r\n/#+") {
		return fmt.Errorf("provision: the template returned an unusable thing name %q", name)
	}
	return nil
}

// removeStalePending drops a pending.pem of purpose left behind by a crash
// after its identity was committed.
func removeStalePending(dir, purpose string) error {
	p, err := readState(filepath.Join(dir, pendingFile))
	if err != nil || p.headers["Purpose"] != purpose {
		return nil
	}
	if purpose == "renew" && p.cert != nil {
		id, err := Load(dir)
		if err != nil || id.Serial != p.cert.SerialNumber.Text(16) {
			return nil // the renewal is not committed yet
		}
	}
	return remove(dir, pendingFile)
}
