//go:build mosquitto

package shadow

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/kitd-dev/kitd/internal/mosquittotest"
	"github.com/kitd-dev/kitd/internal/shadowemu"
)

// env is a real mTLS Mosquitto with the emulator serving shadows on it.
type env struct {
	t   *testing.T
	b   *mosquittotest.Broker
	url string
	emu *shadowemu.Emulator
	dir string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	b := mosquittotest.Start(t, mosquittotest.Options{Devices: []string{kitID}})
	tlsCfg, err := b.CA.ClientTLS(b.Certs[mosquittotest.Observer])
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	emu, err := shadowemu.Start(ctx, b.URL, tlsCfg, "shadow-service", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	return &env{t: t, b: b, url: b.URL, emu: emu, dir: t.TempDir()}
}

func (e *env) connect(k *kit) *conn {
	e.t.Helper()
	tlsCfg, err := e.b.CA.ClientTLS(e.b.Certs[kitID])
	if err != nil {
		e.t.Fatal(err)
	}
	return dial(e.t, e.url, tlsCfg, kitID, k.s)
}

// spy watches shadow topics with the observer's identity.
type spy struct {
	mu   sync.Mutex
	msgs []spyMsg
}

type spyMsg struct {
	topic   string
	payload map[string]any
}

func (e *env) spy(filter string) *spy {
	e.t.Helper()
	tlsCfg, err := e.b.CA.ClientTLS(e.b.Certs[mosquittotest.Observer])
	if err != nil {
		e.t.Fatal(err)
	}
	o := mqtt.NewClientOptions().AddBroker(e.url).SetClientID("spy-" + fmt.Sprint(time.Now().UnixNano())).
		SetTLSConfig(tlsCfg).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	c := mqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		e.t.Fatalf("spy connect: %v", tok.Error())
	}
	sp := &spy{}
	tok := c.Subscribe(filter, 1, func(_ mqtt.Client, m mqtt.Message) {
		var p map[string]any
		_ = json.Unmarshal(m.Payload(), &p)
		sp.mu.Lock()
		sp.msgs = append(sp.msgs, spyMsg{m.Topic(), p})
		sp.mu.Unlock()
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		e.t.Fatalf("spy subscribe: %v", tok.Error())
	}
	e.t.Cleanup(func() { c.Disconnect(50) })
	return sp
}

func (e *env) publish(topic string, payload any) {
	e.t.Helper()
	tlsCfg, _ := e.b.CA.ClientTLS(e.b.Certs[mosquittotest.Observer])
	o := mqtt.NewClientOptions().AddBroker(e.url).SetClientID("cloud-app").SetTLSConfig(tlsCfg).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	c := mqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		e.t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(50)
	b, _ := json.Marshal(payload)
	if tok := c.Publish(topic, 1, false, b); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		e.t.Fatalf("publish: %v", tok.Error())
	}
}

func (s *spy) matching(f func(spyMsg) bool) []spyMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []spyMsg
	for _, m := range s.msgs {
		if f(m) {
			out = append(out, m)
		}
	}
	return out
}

// synced waits until the kit reported on connect.
func (e *env) synced(k *kit) {
	e.t.Helper()
	eventually(e.t, "report on connect", func() bool {
		d, ok := e.emu.Document(kitID, k.cfg.Name)
		return ok && d.State.Reported["connected"] == true
	})
}

func (e *env) doc(name string) shadowemu.Doc {
	e.t.Helper()
	d, ok := e.emu.Document(kitID, name)
	if !ok {
		e.t.Fatalf("no shadow document for %s/%q", kitID, name)
	}
	return d
}
