package provision

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// RenewalDue reports whether id should be renewed at now: the kit's own
// certificate, expiring within RenewBefore. The claim certificate is never
// renewed by the kit.
func (c Config) RenewalDue(id Identity, now time.Time) bool {
	return c.Enabled() && !id.Claim && id.NotAfter.Sub(now) < c.RenewBefore
}

// Renew replaces the kit's certificate over its own connection conn: a
// fresh key and CSR, CreateCertificateFromCsr, and the template run again
// with the new certificate's token (which attaches it to the kit's thing
// and activates it). The new identity is committed with the old one kept
// as previous.pem: the publisher picks the new files up at its next
// connect, and Confirm drops the old once the new one has connected
// (Restore goes back to it if the new one is refused). A failure at any
// step leaves identity.pem as it was, and the next Renew resumes.
func Renew(ctx context.Context, conn Conn, c Config, opts Options) (Identity, error) {
	opts = opts.withDefaults()
	cur, err := Load(c.Dir)
	if err != nil {
		return Identity{}, err
	}
	_ = removeStalePending(c.Dir, "renew")
	params, err := opts.Sources.Expand(c.params())
	if err != nil {
		return Identity{}, err
	}
	p, err := loadPending(c.Dir, "renew", opts)
	if err != nil {
		return Identity{}, err
	}
	reg, err := certifyAndRegister(ctx, conn, c, p, params, opts)
	if err != nil {
		return Identity{}, fmt.Errorf("renewal: %w", err)
	}
	if reg.ThingName != cur.ThingName {
		// Not ours to use: start the next renewal from a fresh key.
		_ = remove(c.Dir, pendingFile)
		return Identity{}, fmt.Errorf("%w: %q instead of %q (the template's thing name must not change: check its parameters)", ErrThingChanged, reg.ThingName, cur.ThingName)
	}
	id, err := commit(c.Dir, p, reg, c.Template, opts, true)
	if err != nil {
		return Identity{}, fmt.Errorf("renewal: %w", err)
	}
	opts.Log.Info("provisioning: certificate renewed; used from the next connection", "thing", id.ThingName,
		"certificate_id", id.CertificateID, "not_after", id.NotAfter.UTC().Format(timeFormat),
		"previous_not_after", cur.NotAfter.UTC().Format(timeFormat))
	return id, nil
}

// HasPrevious reports whether a renewed identity still keeps the one it
// replaced (the new one has not been confirmed yet).
func HasPrevious(c Config) bool {
	_, err := os.Stat(filepath.Join(c.Dir, previousFile))
	return err == nil
}

// Confirm drops the replaced identity once the new one has connected.
func Confirm(c Config) error { return remove(c.Dir, previousFile) }

// Restore goes back to the identity a renewal replaced (the broker refuses
// the new one). The renewed certificate is then unused; the next renewal
// starts from a fresh key.
func Restore(c Config) error {
	prev := filepath.Join(c.Dir, previousFile)
	if _, err := readState(prev); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("provision: no previous identity to restore")
		}
		return err
	}
	if err := os.Rename(prev, filepath.Join(c.Dir, identityFile)); err != nil {
		return fmt.Errorf("provision: %w", err)
	}
	return syncDir(c.Dir)
}
