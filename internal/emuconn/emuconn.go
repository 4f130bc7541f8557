// Package emuconn connects the AWS service fixtures (internal/shadowemu,
// jobsemu, provemu) to a broker: one way to connect, subscribe after every
// connect and give up with the caller's context, instead of a copy in each.
package emuconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// SubscribeTimeout bounds each subscription's SUBACK.
const SubscribeTimeout = 5 * time.Second

// Connect connects to broker as clientID (over TLS when tlsCfg is set),
// calls subscribe after this and every later connect, and returns once
// the first subscription holds or ctx ends. subscribe runs on its own
// goroutine: subscribing inside paho's OnConnect deadlocks it (#208).
//
// A fixture may lean on paho's reconnect, which kitd itself never does
// (publisher/doc.go): it keeps no state in the session, and tests restart
// brokers under it.
func Connect(ctx context.Context, broker, clientID string, tlsCfg *tls.Config, subscribe func(mqtt.Client) error) (mqtt.Client, error) {
	subscribed := make(chan error, 1)
	opts := mqtt.NewClientOptions().AddBroker(broker).SetClientID(clientID).
		SetCleanSession(true).SetConnectRetry(false).
		SetAutoReconnect(true).SetMaxReconnectInterval(time.Second).
		SetConnectTimeout(10 * time.Second).SetKeepAlive(30 * time.Second).
		SetOrderMatters(false).
		SetOnConnectHandler(func(c mqtt.Client) {
			go func() {
				err := subscribe(c)
				select {
				case subscribed <- err:
				default:
				}
			}()
		})
	if tlsCfg != nil {
		opts.SetTLSConfig(tlsCfg)
	}
	c := mqtt.NewClient(opts)
	tok := c.Connect()
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return nil, fmt.Errorf("connect %s: %w", broker, err)
		}
	case <-ctx.Done():
		c.Disconnect(0)
		return nil, fmt.Errorf("connect %s: %w", broker, ctx.Err())
	}
	select {
	case err := <-subscribed:
		if err != nil {
			c.Disconnect(0)
			return nil, err
		}
	case <-ctx.Done():
		c.Disconnect(0)
		return nil, fmt.Errorf("subscribe: %w", ctx.Err())
	}
	return c, nil
}

// Subscribe subscribes c to filters with handler and waits for the SUBACK
// within SubscribeTimeout.
func Subscribe(c mqtt.Client, filters map[string]byte, handler mqtt.MessageHandler) error {
	tok := c.SubscribeMultiple(filters, handler)
	if !tok.WaitTimeout(SubscribeTimeout) {
		return errors.New("subscribe timed out")
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	return nil
}
