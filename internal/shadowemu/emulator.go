package shadowemu

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/kitd-dev/kitd/internal/emuconn"
	"log/slog"
	"strings"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// requestFilters are the request topics of every thing's shadows. The
// replies go to sub-topics of these, so the emulator never hears itself.
var requestFilters = map[string]byte{
	"$aws/things/+/shadow/get":           1,
	"$aws/things/+/shadow/update":        1,
	"$aws/things/+/shadow/delete":        1,
	"$aws/things/+/shadow/name/+/get":    1,
	"$aws/things/+/shadow/name/+/update": 1,
	"$aws/things/+/shadow/name/+/delete": 1,
}

// publishTimeout bounds each reply's wait for PUBACK: paho's token.Wait
// can hang forever.
const publishTimeout = 5 * time.Second

// Emulator serves the shadow topics on one broker.
type Emulator struct {
	client mqtt.Client
	log    *slog.Logger
	now    func() time.Time

	// Requests queue without bound, so paho's handler never blocks: a
	// blocked handler would also hold up the PUBACKs the worker waits for.
	qmu   sync.Mutex
	queue []job
	wake  chan struct{}

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	mirrorMu sync.Mutex
	mirrors  []string // status topic filters copied into shadows

	mu        sync.Mutex // guards the documents, read by Document
	docs      map[docKey]*document
	deleted   map[docKey]int64 // a new document continues a deleted one's version
	conflicts map[docKey]int
}

type docKey struct{ thing, name string }

// job is one request: from MQTT, or from the API (result set).
type job struct {
	topic   string
	payload []byte
	result  chan error
}

// Start connects to broker as clientID (over TLS when tlsCfg is set) and
// serves until Close. ctx bounds the start only, as with DialContext.
func Start(ctx context.Context, broker string, tlsCfg *tls.Config, clientID string, log *slog.Logger) (*Emulator, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Emulator{
		log:       log.With("component", "shadowemu"),
		now:       time.Now,
		wake:      make(chan struct{}, 1),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
		docs:      map[docKey]*document{},
		deleted:   map[docKey]int64{},
		conflicts: map[docKey]int{},
	}
	c, err := emuconn.Connect(ctx, broker, clientID, tlsCfg, e.subscribe)
	if err != nil {
		return nil, fmt.Errorf("shadowemu: %w", err)
	}
	e.client = c
	go e.run()
	return e, nil
}

func (e *Emulator) subscribe(c mqtt.Client) error {
	filters := map[string]byte{}
	for f, q := range requestFilters {
		filters[f] = q
	}
	e.mirrorMu.Lock()
	for _, f := range e.mirrors {
		filters[f] = 1
	}
	e.mirrorMu.Unlock()
	return emuconn.Subscribe(c, filters, e.receive)
}

func (e *Emulator) receive(_ mqtt.Client, m mqtt.Message) {
	if _, _, _, ok := parseTopic(m.Topic()); ok {
		e.enqueue(job{topic: m.Topic(), payload: m.Payload()})
		return
	}
	e.mirrorMu.Lock()
	filters := append([]string(nil), e.mirrors...)
	e.mirrorMu.Unlock()
	for _, f := range filters {
		if thing, ok := thingOf(f, m.Topic()); ok {
			e.enqueue(job{topic: prefixOf(docKey{thing: thing}) + "/update", payload: selectState(m.Payload())})
			return
		}
	}
}

// MirrorStatus stands in for a status rule: every message on filter (e.g.
// "kits/+/status", the '+' standing for the thing name) is applied as an
// update of that thing's classic shadow, keeping only its "state" (SELECT
// state). It lets the demo's shadow show connected:false after a kit's
// Last Will, and tests play a late Will through it. On AWS,
// deploy/aws/status-rule.json takes AWS IoT's lifecycle events instead,
// which a broker such as Mosquitto does not publish.
func (e *Emulator) MirrorStatus(filter string) error {
	if strings.Count(filter, "+") != 1 || strings.Contains(filter, "#") {
		return fmt.Errorf("shadowemu: status filter %q: want exactly one '+' for the thing name", filter)
	}
	e.mirrorMu.Lock()
	e.mirrors = append(e.mirrors, filter)
	e.mirrorMu.Unlock()
	tok := e.client.Subscribe(filter, 1, e.receive)
	if !tok.WaitTimeout(publishTimeout) {
		return errors.New("shadowemu: subscribe timed out")
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("shadowemu: subscribe %s: %w", filter, err)
	}
	return nil
}

// thingOf matches topic against a filter with one '+' and returns the
// level the '+' stands for.
func thingOf(filter, topic string) (string, bool) {
	fp, tp := strings.Split(filter, "/"), strings.Split(topic, "/")
	if len(fp) != len(tp) {
		return "", false
	}
	thing := ""
	for i := range fp {
		switch {
		case fp[i] == "+":
			thing = tp[i]
		case fp[i] != tp[i]:
			return "", false
		}
	}
	return thing, thing != ""
}

// selectState is the rule's SELECT state: the payload's "state" member
// alone. A payload without one becomes an update the service rejects.
func selectState(payload []byte) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(payload, &m) != nil || m["state"] == nil {
		return []byte("{}")
	}
	b, _ := json.Marshal(map[string]json.RawMessage{"state": m["state"]})
	return b
}

func (e *Emulator) enqueue(j job) {
	e.qmu.Lock()
	e.queue = append(e.queue, j)
	e.qmu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// run handles requests one at a time, in arrival order, as the service
// handles one shadow's requests.
func (e *Emulator) run() {
	defer close(e.done)
	for {
		e.qmu.Lock()
		batch := e.queue
		e.queue = nil
		e.qmu.Unlock()
		for _, j := range batch {
			err := e.handle(j)
			if j.result != nil {
				j.result <- err
			}
		}
		select {
		case <-e.wake:
		case <-e.stop:
			e.qmu.Lock()
			rest := e.queue
			e.queue = nil
			e.qmu.Unlock()
			for _, j := range rest {
				if j.result != nil {
					j.result <- errors.New("shadowemu: closed")
				}
			}
			return
		}
	}
}

// Close disconnects and stops the emulator. It is safe to call twice.
func (e *Emulator) Close() error {
	e.closeOnce.Do(func() {
		close(e.stop)
		e.client.Disconnect(250)
		<-e.done
	})
	return nil
}

// outgoing is one reply to publish.
type outgoing struct {
	topic   string
	payload any
}

func (e *Emulator) publish(out []outgoing) {
	for _, o := range out {
		b, err := json.Marshal(o.payload)
		if err != nil {
			e.log.Error("shadowemu: encode reply", "topic", o.topic, "err", err)
			continue
		}
		tok := e.client.Publish(o.topic, 1, false, b)
		if !tok.WaitTimeout(publishTimeout) {
			e.log.Warn("shadowemu: publish timed out", "topic", o.topic)
			continue
		}
		if err := tok.Error(); err != nil {
			e.log.Warn("shadowemu: publish failed", "topic", o.topic, "err", err)
		}
	}
}

// parseTopic splits a request topic into its shadow and operation.
func parseTopic(topic string) (docKey, string, string, bool) {
	parts := strings.Split(topic, "/")
	switch {
	case len(parts) == 5 && parts[0] == "$aws" && parts[1] == "things" && parts[3] == "shadow":
		return docKey{thing: parts[2]}, parts[4], strings.Join(parts[:4], "/"), true
	case len(parts) == 7 && parts[0] == "$aws" && parts[1] == "things" && parts[3] == "shadow" && parts[4] == "name":
		return docKey{thing: parts[2], name: parts[5]}, parts[6], strings.Join(parts[:6], "/"), true
	}
	return docKey{}, "", "", false
}

func prefixOf(k docKey) string {
	p := "$aws/things/" + k.thing + "/shadow"
	if k.name != "" {
		p += "/name/" + k.name
	}
	return p
}

func (e *Emulator) handle(j job) error {
	k, op, prefix, ok := parseTopic(j.topic)
	if !ok {
		return fmt.Errorf("shadowemu: not a shadow topic: %s", j.topic)
	}
	ts := e.now().Unix()
	e.mu.Lock()
	var (
		out []outgoing
		rej *Rejection
	)
	switch op {
	case "get":
		out, rej = e.getLocked(k, prefix, j.payload, ts)
	case "update":
		out, rej = e.updateLocked(k, prefix, j.payload, ts)
	case "delete":
		out, rej = e.deleteLocked(k, prefix, j.payload, ts)
	default:
		e.mu.Unlock()
		return fmt.Errorf("shadowemu: unknown operation %q", op)
	}
	e.mu.Unlock()
	// AWS answers a REST caller (here: the API) in the HTTP response and
	// publishes rejections only to MQTT requesters.
	if rej != nil && j.result == nil {
		out = []outgoing{{prefix + "/" + op + "/rejected", rej.payload(ts)}}
	}
	e.publish(out)
	if rej != nil {
		return rej
	}
	return nil
}

// UpdateDesired changes a shadow's desired state as a cloud application
// would: desired is merged (nested maps; nil deletes a key), then
// update/accepted, update/documents and, if desired now differs from
// reported, update/delta are published. A rejection is returned as a
// *Rejection.
func (e *Emulator) UpdateDesired(thing, shadowName string, desired map[string]any) error {
	b, err := json.Marshal(map[string]any{"state": map[string]any{"desired": desired}})
	if err != nil {
		return fmt.Errorf("shadowemu: %w", err)
	}
	topic := prefixOf(docKey{thing: thing, name: shadowName}) + "/update"
	res := make(chan error, 1)
	e.enqueue(job{topic: topic, payload: b, result: res})
	select {
	case err := <-res:
		return err
	case <-e.done:
		return errors.New("shadowemu: closed")
	}
}

// InjectConflicts makes the next n updates of a shadow that carry a
// version find it moved on, as if another writer had updated first: the
// version goes up by one and the update is rejected with 409.
func (e *Emulator) InjectConflicts(thing, shadowName string, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.conflicts[docKey{thing: thing, name: shadowName}] += n
}
