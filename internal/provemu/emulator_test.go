package provemu_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/internal/provemu"
	"github.com/kitd-dev/kitd/internal/testkit"
	"github.com/kitd-dev/kitd/publisher"
)

type client struct {
	t    *testing.T
	conn *publisher.OneShot
	mu   sync.Mutex
	got  map[string][]byte
}

func (c *client) request(topic string, payload any) (string, map[string]any) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, r := range []string{"/accepted", "/rejected"} {
		if err := c.conn.Subscribe(ctx, topic+r, func(tp string, b []byte) {
			c.mu.Lock()
			c.got[tp] = b
			c.mu.Unlock()
		}); err != nil {
			c.t.Fatal(err)
		}
	}
	body, _ := json.Marshal(payload)
	if s, ok := payload.(string); ok {
		body = []byte(s)
	}
	c.mu.Lock()
	c.got = map[string][]byte{}
	c.mu.Unlock()
	if err := c.conn.Publish(ctx, topic, body, false); err != nil {
		c.t.Fatal(err)
	}
	var which string
	var b []byte
	testkit.WaitFor(c.t, 20*time.Second, "a reply on "+topic, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for tp, p := range c.got {
			which, b = tp[len(topic):], p
			return true
		}
		return false
	})
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		c.t.Fatalf("reply is not JSON: %s", b)
	}
	return which, m
}

func csr(t *testing.T) string {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// The emulator answers AWS's topics with AWS's payloads, and its errors in
// AWS's error form.
func TestEmulatorSpeaksTheProvisioningAPI(t *testing.T) {
	hook := &provemu.AuthHook{}
	b := testkit.StartBroker(t, hook)
	now := time.Now()
	var clock sync.Mutex
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	emu, err := provemu.Start(ctx, b.URL, b.ClientTLS("provemu"), "provemu", provemu.Options{CA: b.CA,
		Now: func() time.Time { clock.Lock(); defer clock.Unlock(); return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	hook.Attach(emu)
	emu.AddTemplate(provemu.Template{Name: "fleet", Required: []string{"SerialNumber"},
		ThingName: func(p map[string]string) string { return "kit-" + p["SerialNumber"] },
		PreProvision: func(p map[string]string) error {
			if p["SerialNumber"] == "stolen" {
				return errSerial
			}
			return nil
		},
		DeviceConfiguration: map[string]string{"site": "lab"},
	})
	claim := b.Client("claim")
	m := publisher.DefaultConfig()
	m.Broker, m.CAFile, m.CertFile, m.KeyFile = b.URL, b.CA.CAFile, claim.CertFile, claim.KeyFile
	conn, err := publisher.Dial(ctx, m, "claim-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := &client{t: t, conn: conn}

	const create = "$aws/certificates/create-from-csr/json"
	const provision = "$aws/provisioning-templates/fleet/provision/json"
	rejected := func(which string, m map[string]any, status float64, code string) {
		t.Helper()
		if which != "/rejected" || m["statusCode"] != status || m["errorCode"] != code || m["errorMessage"] == "" {
			t.Errorf("want rejected %v %s, got %s %v", status, code, which, m)
		}
	}

	which, r := c.request(create, "not json")
	rejected(which, r, 400, "InvalidPayload")
	which, r = c.request(create, map[string]string{"certificateSigningRequest": "garbage"})
	rejected(which, r, 400, "InvalidPayload")

	which, r = c.request(create, map[string]string{"certificateSigningRequest": csr(t)})
	if which != "/accepted" || r["certificateId"] == "" || r["certificatePem"] == "" || r["certificateOwnershipToken"] == "" {
		t.Fatalf("create-from-csr: %s %v", which, r)
	}
	token := r["certificateOwnershipToken"]
	if cs := emu.Certificates(); len(cs) != 1 || cs[0].Status != "PENDING_ACTIVATION" {
		t.Fatalf("certificates %+v", cs)
	}

	which, r = c.request("$aws/provisioning-templates/nope/provision/json", map[string]any{"certificateOwnershipToken": token, "parameters": map[string]string{"SerialNumber": "1"}})
	rejected(which, r, 404, "ResourceNotFound")
	which, r = c.request(provision, map[string]any{"certificateOwnershipToken": "forged", "parameters": map[string]string{"SerialNumber": "1"}})
	rejected(which, r, 400, "InvalidCertificateOwnershipToken")
	which, r = c.request(provision, map[string]any{"certificateOwnershipToken": token, "parameters": map[string]string{}})
	rejected(which, r, 400, "InvalidParameters")
	which, r = c.request(provision, map[string]any{"certificateOwnershipToken": token, "parameters": map[string]string{"SerialNumber": "stolen"}})
	rejected(which, r, 403, "AccessDenied")

	which, r = c.request(provision, map[string]any{"certificateOwnershipToken": token, "parameters": map[string]string{"SerialNumber": "1"}})
	if which != "/accepted" || r["thingName"] != "kit-1" || r["deviceConfiguration"].(map[string]any)["site"] != "lab" {
		t.Fatalf("provision: %s %v", which, r)
	}
	if cs := emu.Certificates(); cs[0].Status != "ACTIVE" || cs[0].Thing != "kit-1" {
		t.Fatalf("after provision: %+v", cs[0])
	}
	// A repeat within the hour (a kit that lost the reply) is answered
	// again, with the same thing and no second attachment.
	which, r = c.request(provision, map[string]any{"certificateOwnershipToken": token, "parameters": map[string]string{"SerialNumber": "1"}})
	if which != "/accepted" || r["thingName"] != "kit-1" {
		t.Fatalf("repeated provision: %s %v", which, r)
	}
	if got := emu.ThingCertificates("kit-1"); len(got) != 1 {
		t.Fatalf("kit-1 has certificates %v after a repeat, want one", got)
	}

	// A token expires after an hour.
	_, r = c.request(create, map[string]string{"certificateSigningRequest": csr(t)})
	clock.Lock()
	now = now.Add(61 * time.Minute)
	clock.Unlock()
	which, r = c.request(provision, map[string]any{"certificateOwnershipToken": r["certificateOwnershipToken"], "parameters": map[string]string{"SerialNumber": "2"}})
	rejected(which, r, 400, "InvalidCertificateOwnershipToken")
	if emu.Issued() != 2 || len(emu.ThingCertificates("kit-1")) != 1 || len(emu.Things()) != 1 {
		t.Errorf("issued %d, things %v", emu.Issued(), emu.Things())
	}
}

var errSerial = &serialError{}

type serialError struct{}

func (*serialError) Error() string { return "serial not on the allow list" }

// As on AWS, a certificate the template has not activated cannot connect;
// once registered it can.
func TestAuthHookRefusesPendingCertificates(t *testing.T) {
	hook := &provemu.AuthHook{}
	b := testkit.StartBroker(t, hook)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	emu, err := provemu.Start(ctx, b.URL, b.ClientTLS("provemu"), "provemu", provemu.Options{CA: b.CA})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	hook.Attach(emu)
	emu.AddTemplate(provemu.Template{Name: "fleet", ThingName: func(map[string]string) string { return "kit-9" }})
	claim := b.Client("claim")
	m := publisher.DefaultConfig()
	m.Broker, m.CAFile, m.CertFile, m.KeyFile = b.URL, b.CA.CAFile, claim.CertFile, claim.KeyFile
	conn, err := publisher.Dial(ctx, m, "claim-9", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := &client{t: t, conn: conn}

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	_, r := c.request("$aws/certificates/create-from-csr/json", map[string]string{
		"certificateSigningRequest": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))})
	dir := t.TempDir()
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile := dir+"/kit.pem", dir+"/kit.key"
	if err := os.WriteFile(certFile, []byte(r["certificatePem"].(string)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	m.CertFile, m.KeyFile = certFile, keyFile
	if _, err := publisher.Dial(ctx, m, "kit-9", nil); !errors.Is(err, publisher.ErrNotAuthorized) {
		t.Fatalf("a PENDING_ACTIVATION certificate connected: %v", err)
	}
	c.request("$aws/provisioning-templates/fleet/provision/json", map[string]any{"certificateOwnershipToken": r["certificateOwnershipToken"], "parameters": map[string]string{}})
	kit, err := publisher.Dial(ctx, m, "kit-9", nil)
	if err != nil {
		t.Fatalf("the registered certificate: %v", err)
	}
	kit.Close()
	if cs := hook.Connections(); len(cs) < 3 || !cs[len(cs)-2].Refused || cs[len(cs)-1].Refused {
		t.Errorf("connections %+v", cs)
	}
}
