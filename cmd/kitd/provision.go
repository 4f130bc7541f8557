package main

import (
	"context"
	"fmt"
	"io"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kitd-dev/kitd/config"
	"github.com/kitd-dev/kitd/provision"
)

// provisionTimeout bounds `kitd provision`: one connection, two requests.
const provisionTimeout = 5 * time.Minute

func (e *env) provisionCmd() *cobra.Command {
	var file string
	c := &cobra.Command{
		Use:   "provision",
		Short: "onboard by fleet provisioning now (claim certificate → the kit's own identity); prints the thing name",
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := e.logger()
			if err != nil {
				return err
			}
			cfg, err := e.loadConfig(file, nil, config.PartDevice|config.PartMQTT|config.PartFiles)
			if err != nil {
				return err
			}
			if !cfg.Provisioning.Enabled() {
				return usageError{fmt.Errorf("%s: provisioning.template: not set, so there is nothing to onboard with (README: provisioning)", file)}
			}
			if !cfg.UsesProvisioning() {
				return usageError{fmt.Errorf("%s: mqtt.cert_file and mqtt.key_file are set, so the kit uses them and never a provisioned identity: leave both out to onboard", file)}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			ctx, cancel := context.WithTimeout(ctx, provisionTimeout)
			defer cancel()
			id, err := provision.Onboard(ctx, cfg.Provisioning, cfg.MQTT, provision.Options{Log: log})
			if err != nil {
				return fmt.Errorf("provisioning failed: %w", err)
			}
			_, err = fmt.Fprintln(e.stdout, id.ThingName)
			return err
		},
	}
	configFlag(c, &file)
	return c
}

func (e *env) identityCmd() *cobra.Command {
	var file string
	c := &cobra.Command{
		Use:   "identity",
		Short: "the identity in effect: thing name, certificate serial and expiry, claim or own",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := e.loadConfig(file, nil, config.PartDevice|config.PartMQTT)
			if err != nil {
				return err
			}
			return writeIdentity(e.stdout, cfg)
		},
	}
	configFlag(c, &file)
	return c
}

// identitySummary is one line for `config check`.
// With skipFiles nothing is read.
func identitySummary(cfg *config.Config, skipFiles bool) string {
	if !cfg.UsesProvisioning() {
		return fmt.Sprintf("configured: device.id %s, mqtt.cert_file %s", cfg.Device.ID, cfg.MQTT.CertFile)
	}
	if skipFiles {
		return "provisioned: the kit's own from " + cfg.Provisioning.Dir + " once onboarded, the claim certificate " +
			cfg.Provisioning.ClaimCertFile + " before (not read: --skip-files)"
	}
	id, err := cfg.Identity()
	switch {
	case err != nil:
		return "unreadable: " + err.Error()
	case id.Claim:
		return "claim certificate " + cfg.Provisioning.ClaimCertFile + " (not onboarded yet: kitd run or kitd provision onboards)"
	}
	return fmt.Sprintf("own: thing %s, %s", id.ThingName, id.CertFile)
}

func writeIdentity(w io.Writer, cfg *config.Config) error {
	id, err := cfg.Identity()
	if err != nil {
		return err
	}
	kind, thing := "own (provisioned, "+id.CertFile+")", id.ThingName
	switch {
	case id.Claim:
		kind, thing = "claim ("+id.CertFile+")", "(none yet: not onboarded; kitd run or kitd provision onboards)"
	case !cfg.UsesProvisioning():
		kind = "configured (mqtt.cert_file " + id.CertFile + ")"
		if id.CertFile != "" {
			if id.Serial, id.NotAfter, err = provision.CertInfo(id.CertFile); err != nil {
				return fmt.Errorf("mqtt.cert_file: %w", err)
			}
		}
	}
	if thing == "" {
		thing = "(none)"
	}
	fmt.Fprintf(w, "thing:       %s\nidentity:    %s\n", thing, kind)
	if id.CertificateID != "" {
		fmt.Fprintf(w, "certificate: %s\n", id.CertificateID)
	}
	if id.Serial != "" {
		fmt.Fprintf(w, "serial:      %s\nexpires:     %s (%s)\n", id.Serial, id.NotAfter.UTC().Format(time.RFC3339), left(id.NotAfter))
	}
	if !id.PreviousNotAfter.IsZero() {
		fmt.Fprintf(w, "previous:    expires %s (kept until the renewed certificate has connected)\n", id.PreviousNotAfter.UTC().Format(time.RFC3339))
	}
	if p := cfg.Provisioning; cfg.UsesProvisioning() && p.RenewalDue(id, time.Now()) {
		fmt.Fprintf(w, "renewal:     due (expires within provisioning.renew_before %s): the agent renews it at its next connection\n", p.RenewBefore)
	}
	return nil
}

func left(t time.Time) string {
	d := time.Until(t)
	if d <= 0 {
		return "expired"
	}
	return fmt.Sprintf("in %d days", int(d.Hours()/24))
}
