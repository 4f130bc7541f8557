package testkit

import (
	"errors"
	"net"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// ProbeMQTT says whether a broker at addr is serving MQTT: the port
// answers within a second, then a client with o gets its CONNACK within
// 10 s and disconnects. External brokers (Mosquitto, RabbitMQ, NATS) open
// their port before they answer CONNECT, so a start waits on this.
func ProbeMQTT(addr string, o *paho.ClientOptions) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	c.Close()
	cl := paho.NewClient(o)
	tok := cl.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return errors.New("CONNACK timed out")
	}
	if err := tok.Error(); err != nil {
		return err
	}
	cl.Disconnect(0)
	return nil
}
