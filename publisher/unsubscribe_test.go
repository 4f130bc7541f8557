package publisher

import (
	"context"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/internal/testkit"
)

// Unsubscribe removes the subscription at the broker (a long connection
// must not collect subscriptions: AWS allows 50) and a second Subscribe to
// the same topic works again.
func TestUnsubscribe(t *testing.T) {
	broker := testkit.StartBroker(t, new(kitACL))
	pair := broker.Client(kit)
	cfg := DefaultConfig()
	cfg.Broker = broker.URL
	cfg.CAFile, cfg.CertFile, cfg.KeyFile = broker.CA.CAFile, pair.CertFile, pair.KeyFile
	buf := openBuffer(t)
	p, err := newPublisher(cfg, Deps{Device: kit, Buffer: buf, Clock: newTestClock(true)}, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	const topic = "kits/kit-1/cmd"
	got := make(chan string, 8)
	steps := make(chan error, 3)
	checked := make(chan struct{}) // the test looked at the broker between the steps
	p.OnConnect(func(ctx context.Context, s *Session) {
		steps <- s.Subscribe(ctx, topic, func(_ string, b []byte) { got <- string(b) })
		<-got // the first message arrived
		steps <- s.Unsubscribe(ctx, topic)
		<-checked
		steps <- s.Subscribe(ctx, topic, func(_ string, b []byte) { got <- string(b) })
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = p.Run(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	subscribed := func() bool { return len(broker.Server.Topics.Subscribers(topic).Subscriptions) == 1 }
	if err := <-steps; err != nil {
		t.Fatal(err)
	}
	if !subscribed() {
		t.Fatal("not subscribed at the broker")
	}
	if err := broker.Server.Publish(topic, []byte("one"), false, 1); err != nil {
		t.Fatal(err)
	}
	if err := <-steps; err != nil {
		t.Fatalf("Unsubscribe: %v", err)
	}
	if subscribed() {
		t.Fatal("still subscribed at the broker after Unsubscribe")
	}
	close(checked)
	if err := <-steps; err != nil {
		t.Fatalf("Subscribe again: %v", err)
	}
	testkit.WaitFor(t, 10*time.Second, "subscribed again", subscribed)
	if err := broker.Server.Publish(topic, []byte("two"), false, 1); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m != "two" {
			t.Fatalf("got %q", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no message after subscribing again")
	}
}
