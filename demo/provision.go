//go:build !kitd_nodemo

package demo

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/kitd-dev/kitd/config"
	"github.com/kitd-dev/kitd/internal/pki"
	"github.com/kitd-dev/kitd/internal/provemu"
	"github.com/kitd-dev/kitd/provision"
)

// demoTemplate is the demo's provisioning template.
const demoTemplate = "kitd-demo"

// startProvisioning makes the demo kit start unprovisioned (`kitd demo
// --provision`): no device id and no certificate of its own, only a
// claim certificate from the demo's throwaway CA, and a provisioning
// emulator on the broker that turns it into the thing Device. It prints
// each step the emulator takes; stop ends the emulator.
func startProvisioning(ctx context.Context, ca *pki.CA, broker, dir string, cfg *config.Config, out io.Writer, log *slog.Logger) (stop func(), err error) {
	claim, err := ca.Client("claim", time.Time{})
	if err != nil {
		return nil, err
	}
	svc, err := ca.Client("provisioning-service", time.Time{})
	if err != nil {
		return nil, err
	}
	tlsCfg, err := ca.ClientTLS(svc)
	if err != nil {
		return nil, err
	}
	emu, err := provemu.Start(ctx, broker, tlsCfg, "provisioning-service", provemu.Options{CA: ca, Log: log})
	if err != nil {
		return nil, fmt.Errorf("provisioning emulator: %w", err)
	}
	emu.AddTemplate(provemu.Template{
		Name:     demoTemplate,
		Required: []string{"SerialNumber"},
		// One demo kit: the thing is always Device, so the shadow and
		// the printed lines match the plain demo's.
		ThingName:           func(map[string]string) string { return Device },
		DeviceConfiguration: map[string]string{"note": "from the demo's template"},
	})
	cfg.Device.ID = ""
	cfg.MQTT.CertFile, cfg.MQTT.KeyFile = "", ""
	cfg.Provisioning = provision.DefaultConfig()
	cfg.Provisioning.Template = demoTemplate
	cfg.Provisioning.ClaimCertFile, cfg.Provisioning.ClaimKeyFile = claim.CertFile, claim.KeyFile
	cfg.Provisioning.Parameters = map[string]string{"SerialNumber": "{serial}"}
	cfg.Provisioning.Dir = filepath.Join(dir, "identity")
	fmt.Fprintf(out, "kitd demo: the kit starts unprovisioned: claim certificate %s, template %q, identity to be made in %s\n",
		claim.CertFile, demoTemplate, cfg.Provisioning.Dir)

	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		watchProvisioning(wctx, out, emu)
	}()
	return func() {
		cancel()
		<-done
		emu.Close()
	}, nil
}

// watchProvisioning prints each certificate the emulator issues and
// registers.
func watchProvisioning(ctx context.Context, out io.Writer, emu *provemu.Emulator) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	seen := map[string]string{}
	for {
		for _, c := range emu.Certificates() {
			if seen[c.ID] == c.Status {
				continue
			}
			if seen[c.ID] == "" && c.Status == "ACTIVE" { // issued and registered between two looks
				fmt.Fprintf(out, "provision certificate %s… issued from the kit's CSR (PENDING_ACTIVATION)\n", c.ID[:12])
			}
			seen[c.ID] = c.Status
			if c.Status == "ACTIVE" {
				fmt.Fprintf(out, "provision thing %s registered by template %q; certificate %s… ACTIVE, expires %s\n",
					c.Thing, demoTemplate, c.ID[:12], c.Cert.NotAfter.UTC().Format(time.RFC3339))
			} else {
				fmt.Fprintf(out, "provision certificate %s… issued from the kit's CSR (%s)\n", c.ID[:12], c.Status)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
