package provision

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"time"
)

// Conn is the MQTT session the provisioning requests go over: the claim
// connection (publisher.Dial) or, for a renewal, the kit's own
// (*publisher.Session). Both calls are QoS 1.
type Conn interface {
	Publish(ctx context.Context, topic string, payload []byte, retained bool) error
	Subscribe(ctx context.Context, topic string, handler func(topic string, payload []byte)) error
}

// The operations, named as in errors.
const (
	opCreate    = "create-from-csr"
	opProvision = "provision"
)

// Topics of AWS IoT's device provisioning MQTT API, JSON payload format.
const topicCreate = "$aws/certificates/create-from-csr/json"

func topicProvision(template string) string {
	return "$aws/provisioning-templates/" + template + "/provision/json"
}

// replyTimeout bounds the wait for an answer once the request is
// acknowledged.
const replyTimeout = 30 * time.Second

// created is CreateCertificateFromCsr's accepted payload.
type created struct {
	CertificateID  string `json:"certificateId"`
	CertificatePEM string `json:"certificatePem"`
	OwnershipToken string `json:"certificateOwnershipToken"`
	cert           *x509.Certificate
}

// registered is RegisterThing's accepted payload.
type registered struct {
	DeviceConfiguration map[string]string `json:"deviceConfiguration"`
	ThingName           string            `json:"thingName"`
}

// request subscribes to topic's /accepted and /rejected replies (AWS
// answers only subscribers, so before publishing), publishes payload and
// waits for one reply within ctx and replyTimeout. A rejection is a
// *RejectedError.
func request(ctx context.Context, c Conn, op, topic string, payload any, accepted any) error {
	body, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	type reply struct {
		ok   bool
		body []byte
	}
	replies := make(chan reply, 2)
	for _, r := range []struct {
		suffix string
		ok     bool
	}{{"/accepted", true}, {"/rejected", false}} {
		ok := r.ok
		if err := c.Subscribe(ctx, topic+r.suffix, func(_ string, b []byte) {
			select {
			case replies <- reply{ok, b}:
			default:
			}
		}); err != nil {
			return fmt.Errorf("%s: subscribe %s%s: %w", op, topic, r.suffix, err)
		}
	}
	if err := c.Publish(ctx, topic, body, false); err != nil {
		return fmt.Errorf("%s: publish %s: %w", op, topic, err)
	}
	t := time.NewTimer(replyTimeout)
	defer t.Stop()
	select {
	case r := <-replies:
		if !r.ok {
			rej := &RejectedError{Op: op}
			if err := json.Unmarshal(r.body, rej); err != nil {
				return fmt.Errorf("%s: rejected with a payload that is not AWS's error form: %w", op, err)
			}
			rej.Op = op
			return rej
		}
		if err := json.Unmarshal(r.body, accepted); err != nil {
			return fmt.Errorf("%s: accepted payload: %w", op, err)
		}
		return nil
	case <-t.C:
		return fmt.Errorf("%s: %w within %s on %s/accepted or /rejected", op, ErrNoReply, replyTimeout, topic)
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", op, ctx.Err())
	}
}

// createFromCSR asks AWS IoT for a certificate for csr; the certificate
// must be for the CSR's key.
func createFromCSR(ctx context.Context, c Conn, s *state) (*created, error) {
	var out created
	if err := request(ctx, c, opCreate, topicCreate, map[string]string{"certificateSigningRequest": csrPEM(s.csr)}, &out); err != nil {
		return nil, err
	}
	if out.OwnershipToken == "" || out.CertificateID == "" {
		return nil, fmt.Errorf("%s: accepted without a certificate id or ownership token", opCreate)
	}
	b, _ := pem.Decode([]byte(out.CertificatePEM))
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: accepted without a PEM certificate", opCreate)
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: certificate: %w", opCreate, err)
	}
	if !samePublic(cert, s.key) {
		return nil, fmt.Errorf("%s: the certificate is not for the kit's key", opCreate)
	}
	out.cert = cert
	return &out, nil
}

// register runs the template with the ownership token and parameters.
func register(ctx context.Context, c Conn, template, token string, params map[string]string) (*registered, error) {
	var out registered
	req := map[string]any{"certificateOwnershipToken": token, "parameters": params}
	if err := request(ctx, c, opProvision, topicProvision(template), req, &out); err != nil {
		return nil, err
	}
	if out.ThingName == "" {
		return nil, errors.New(opProvision + ": accepted without a thing name: the template must create a thing (AWS::IoT::Thing)")
	}
	return &out, nil
}
