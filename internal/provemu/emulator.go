package provemu

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"github.com/kitd-dev/kitd/internal/emuconn"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/kitd-dev/kitd/internal/pki"
)

// Request topics; replies go to their /accepted and /rejected sub-topics,
// so the emulator never hears itself.
const (
	topicCreate    = "$aws/certificates/create-from-csr/json"
	filterProvison = "$aws/provisioning-templates/+/provision/json"
)

// publishTimeout bounds each reply's wait for PUBACK (paho's token.Wait
// can hang forever).
const publishTimeout = 5 * time.Second

// tokenLife is AWS's: an ownership token expires an hour after issue.
const tokenLife = time.Hour

// Template is a provisioning template as the emulator runs it.
type Template struct {
	Name string
	// Required parameters must be present and non-empty.
	Required []string
	// ThingName makes the thing name from the parameters (AWS: the
	// template's ThingName property, e.g. {"Fn::Join":["",["kit-",{"Ref":"SerialNumber"}]]}).
	ThingName func(params map[string]string) string
	// PreProvision is the pre-provisioning hook (a Lambda on AWS): a
	// non-nil error refuses the request (403 AccessDenied) with its text.
	PreProvision func(params map[string]string) error
	// DeviceConfiguration is returned on success.
	DeviceConfiguration map[string]string
}

// Certificate is one certificate the emulator issued.
type Certificate struct {
	ID       string
	Cert     *x509.Certificate
	Status   string // PENDING_ACTIVATION or ACTIVE
	Thing    string // attached thing, "" before registration
	token    string
	issued   time.Time
	consumed bool
}

// Options configure the emulator.
type Options struct {
	// CA signs the certificates (the broker must trust it).
	CA *pki.CA
	// Validity of issued certificates; default a year.
	Validity time.Duration
	Log      *slog.Logger
	// Now is the emulator's clock (token expiry); default time.Now.
	Now func() time.Time
	// SingleUseTokens refuses a second RegisterThing with a token already
	// used. AWS documents the token's hour, not whether it can be used
	// again; by default a repeat within the hour, for the certificate it
	// registered, is answered again with the same thing (the template's
	// resources exist, so registering is idempotent). Tests run both.
	SingleUseTokens bool
}

// Emulator serves the provisioning topics on one broker.
type Emulator struct {
	client mqtt.Client
	opts   Options

	mu        sync.Mutex
	templates map[string]Template
	certs     map[string]*Certificate
	order     []string
	things    map[string][]string // thing → certificate ids
	requests  map[string]int      // "create"/"provision"/"rejected:<code>" → count

	jobs chan mqtt.Message
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// Start connects to broker as clientID and serves until Close. ctx bounds
// the start only.
func Start(ctx context.Context, broker string, tlsCfg *tls.Config, clientID string, opts Options) (*Emulator, error) {
	if opts.CA == nil {
		return nil, errors.New("provemu: a CA is required")
	}
	if opts.Validity <= 0 {
		opts.Validity = 365 * 24 * time.Hour
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	e := &Emulator{
		opts: opts, templates: map[string]Template{}, certs: map[string]*Certificate{},
		things: map[string][]string{}, requests: map[string]int{},
		jobs: make(chan mqtt.Message, 256), stop: make(chan struct{}), done: make(chan struct{}),
	}
	c, err := emuconn.Connect(ctx, broker, clientID, tlsCfg, func(c mqtt.Client) error {
		return emuconn.Subscribe(c, map[string]byte{topicCreate: 1, filterProvison: 1}, e.receive)
	})
	if err != nil {
		return nil, fmt.Errorf("provemu: %w", err)
	}
	e.client = c
	go e.run()
	return e, nil
}

// Close disconnects.
func (e *Emulator) Close() {
	e.once.Do(func() {
		close(e.stop)
		<-e.done
		e.client.Disconnect(250)
	})
}

// SetValidity changes how long certificates issued from now on are valid.
func (e *Emulator) SetValidity(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.opts.Validity = d
}

// AddTemplate adds or replaces a template.
func (e *Emulator) AddTemplate(t Template) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.templates[t.Name] = t
}

// Issued counts certificates created (registered or not).
func (e *Emulator) Issued() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.certs)
}

// Certificates lists the issued certificates in issue order (copies).
func (e *Emulator) Certificates() []Certificate {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Certificate, 0, len(e.order))
	for _, id := range e.order {
		out = append(out, *e.certs[id])
	}
	return out
}

// ThingCertificates lists the ids of the certificates attached to thing.
func (e *Emulator) ThingCertificates(thing string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.things[thing]...)
}

// Things lists the things created, sorted.
func (e *Emulator) Things() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]string, 0, len(e.things))
	for t := range e.things {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Requests counts requests by kind: "create", "provision", and
// "rejected:<errorCode>".
func (e *Emulator) Requests(kind string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.requests[kind]
}

func (e *Emulator) receive(_ mqtt.Client, m mqtt.Message) {
	select {
	case e.jobs <- m:
	case <-e.stop:
	}
}

func (e *Emulator) run() {
	defer close(e.done)
	for {
		select {
		case <-e.stop:
			return
		case m := <-e.jobs:
			topic, payload := e.handle(m.Topic(), m.Payload())
			tok := e.client.Publish(topic, 1, false, payload)
			if !tok.WaitTimeout(publishTimeout) || tok.Error() != nil {
				e.opts.Log.Warn("provemu: reply not acknowledged", "topic", topic)
			}
		}
	}
}

// rejection is AWS's error payload.
type rejection struct {
	StatusCode   int    `json:"statusCode"`
	ErrorCode    string `json:"errorCode"`
	ErrorMessage string `json:"errorMessage"`
}

func (e *Emulator) handle(topic string, payload []byte) (string, []byte) {
	var (
		reply any
		rej   *rejection
	)
	if topic == topicCreate {
		reply, rej = e.create(payload)
	} else {
		name := strings.TrimSuffix(strings.TrimPrefix(topic, "$aws/provisioning-templates/"), "/provision/json")
		reply, rej = e.provision(name, payload)
	}
	if rej != nil {
		e.count("rejected:" + rej.ErrorCode)
		b, _ := json.Marshal(rej)
		return topic + "/rejected", b
	}
	b, _ := json.Marshal(reply)
	return topic + "/accepted", b
}

func (e *Emulator) count(kind string) {
	e.mu.Lock()
	e.requests[kind]++
	e.mu.Unlock()
}

func (e *Emulator) create(payload []byte) (any, *rejection) {
	e.count("create")
	var req struct {
		CSR string `json:"certificateSigningRequest"`
	}
	if err := json.Unmarshal(payload, &req); err != nil {
		return nil, &rejection{400, "InvalidPayload", "the payload is not valid JSON"}
	}
	b, _ := pem.Decode([]byte(req.CSR))
	if b == nil || b.Type != "CERTIFICATE REQUEST" {
		return nil, &rejection{400, "InvalidPayload", "certificateSigningRequest is not a PEM certificate request"}
	}
	csr, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		return nil, &rejection{400, "InvalidPayload", "certificateSigningRequest does not parse"}
	}
	now := e.opts.Now()
	e.mu.Lock()
	validity := e.opts.Validity
	e.mu.Unlock()
	cert, err := e.opts.CA.SignCSR(csr, "AWS IoT Certificate", now.Add(validity))
	if err != nil {
		return nil, &rejection{400, "InvalidPayload", err.Error()}
	}
	sum := sha256.Sum256(cert.Raw)
	id := hex.EncodeToString(sum[:])
	tok := make([]byte, 48)
	_, _ = rand.Read(tok)
	c := &Certificate{ID: id, Cert: cert, Status: "PENDING_ACTIVATION", token: base64.StdEncoding.EncodeToString(tok), issued: now}
	e.mu.Lock()
	e.certs[id] = c
	e.order = append(e.order, id)
	e.mu.Unlock()
	return map[string]string{
		"certificateId":             id,
		"certificatePem":            string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})),
		"certificateOwnershipToken": c.token,
	}, nil
}

func (e *Emulator) provision(name string, payload []byte) (any, *rejection) {
	e.count("provision")
	var req struct {
		Token  string            `json:"certificateOwnershipToken"`
		Params map[string]string `json:"parameters"`
	}
	if err := json.Unmarshal(payload, &req); err != nil {
		return nil, &rejection{400, "InvalidPayload", "the payload is not valid JSON"}
	}
	e.mu.Lock()
	t, ok := e.templates[name]
	var c *Certificate
	for _, cc := range e.certs {
		if req.Token != "" && cc.token == req.Token {
			c = cc
		}
	}
	e.mu.Unlock()
	if !ok {
		return nil, &rejection{404, "ResourceNotFound", "no provisioning template named " + name}
	}
	if req.Token == "" {
		return nil, &rejection{400, "InvalidCertificateOwnershipToken", "Certificate ownership token cannot be empty."}
	}
	if c == nil || (c.consumed && e.opts.SingleUseTokens) || e.opts.Now().Sub(c.issued) > tokenLife {
		return nil, &rejection{400, "InvalidCertificateOwnershipToken", "the certificate ownership token is not valid"}
	}
	for _, p := range t.Required {
		if req.Params[p] == "" {
			return nil, &rejection{400, "InvalidParameters", "missing parameter " + p}
		}
	}
	if t.PreProvision != nil {
		if err := t.PreProvision(req.Params); err != nil {
			return nil, &rejection{403, "AccessDenied", "the pre-provisioning hook refused the request: " + err.Error()}
		}
	}
	thing := t.ThingName(req.Params)
	e.mu.Lock()
	if !c.consumed || c.Thing != thing {
		e.things[thing] = append(e.things[thing], c.ID)
	}
	c.consumed, c.Status, c.Thing = true, "ACTIVE", thing
	e.mu.Unlock()
	cfg := t.DeviceConfiguration
	if cfg == nil {
		cfg = map[string]string{}
	}
	return map[string]any{"deviceConfiguration": cfg, "thingName": thing}, nil
}
