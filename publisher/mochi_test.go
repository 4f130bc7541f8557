package publisher

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/kitd-dev/kitd/internal/testkit"
)

// kitACL lets every client with a verified certificate in, and keeps
// subscriptions off topics named forbidden (so a refused SUBACK can be
// seen: Mosquitto grants denied subscriptions under MQTT 3.1.1).
type kitACL struct{ mqtt.HookBase }

func (h *kitACL) ID() string { return "kit-acl" }
func (h *kitACL) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck}, []byte{b})
}
func (h *kitACL) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }
func (h *kitACL) OnACLCheck(_ *mqtt.Client, topic string, _ bool) bool {
	return !strings.Contains(topic, "forbidden")
}

// The hermetic end to end: the in-process broker (as in kitd demo) with
// mutual TLS from a throwaway CA, no Mosquitto, no network beyond loopback.
func TestHermeticInProcessBroker(t *testing.T) {
	broker := testkit.StartBroker(t, new(kitACL))
	kitPair := broker.Client(kit)

	buf := openBuffer(t)
	obs := newCollector(t, buf.Epoch())
	if err := broker.Server.Subscribe("kits/#", 1, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		obs.add(pk.TopicName, pk.Payload)
	}); err != nil {
		t.Fatal(err)
	}

	cfg := DefaultConfig()
	cfg.Broker = broker.URL
	cfg.CAFile, cfg.CertFile, cfg.KeyFile = broker.CA.CAFile, kitPair.CertFile, kitPair.KeyFile
	cfg.MaxPublishRate = 0
	cfg.Batch.MaxReadings = 20
	log, _ := newLog(t)
	p, err := newPublisher(cfg, Deps{Device: kit, Buffer: buf, Clock: newTestClock(true), Log: log}, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	subErr := make(chan error, 1)
	p.OnConnect(func(ctx context.Context, s *Session) {
		subErr <- s.Subscribe(ctx, "kits/forbidden/cmd", func(string, []byte) {})
	})
	seqs := appendReadings(t, buf, "air", 150)
	ctx, cancel := context.WithCancel(context.Background())
	var runErr error
	done := make(chan struct{})
	go func() {
		runErr = p.Run(ctx)
		close(done)
	}()
	defer func() {
		cancel()
		<-done
	}()
	seqs = append(seqs, appendReadings(t, buf, "soil", 150)...)
	obs.waitAll(t, seqs, 20*time.Second)
	if dups := obs.check(t, seqs); dups != 0 {
		t.Errorf("%d duplicates", dups)
	}
	select {
	case err := <-subErr:
		if !errors.Is(err, ErrSubscribeRefused) {
			t.Errorf("subscribing where the ACL denies: %v, want ErrSubscribeRefused", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("hook did not run")
	}
	waitPending(t, buf, 0)
	cancel()
	<-done
	if runErr != nil {
		t.Fatal(runErr)
	}
	obs.waitFor(t, 5*time.Second, "connected:false", func() bool {
		return len(obs.status) > 0 && obs.status[len(obs.status)-1] == string(offlinePayload)
	})
	obs.mu.Lock()
	first := obs.status[0]
	obs.mu.Unlock()
	if !strings.HasPrefix(first, `{"state":{"reported":{"connected":true}},"ts":"`) {
		t.Errorf("first status %q", first)
	}
}
