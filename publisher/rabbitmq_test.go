//go:build rabbitmq

package publisher

import (
	"fmt"
	"os"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/kitd-dev/kitd/internal/rabbitmqtest"
)

// rabbit is the node the package's RabbitMQ tests share: one boot per test
// binary (Erlang takes 5-60 s), started in TestMain.
var rabbit *rabbitmqtest.Broker

const rabbitPassword = "kit-secret"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kitd-publisher-rabbitmq-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	start := time.Now()
	rabbit, err = rabbitmqtest.Start(dir, rabbitmqtest.Options{Devices: []string{kit}, Passwords: map[string]string{kit: rabbitPassword}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "rabbitmq:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "rabbitmq node up in %v\n", time.Since(start).Round(time.Millisecond))
	code := m.Run()
	rabbit.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

// rabbitBroker reaches the shared node; kits log in with their
// certificate (ssl_cert_login) unless password is set.
type rabbitBroker struct{ password bool }

func (r rabbitBroker) kitConfig(t *testing.T) Config {
	c := DefaultConfig()
	c.Broker = rabbit.URL
	c.CAFile = rabbit.CA.CAFile
	if r.password {
		c.Username, c.PasswordFile = kit, writeSecret(t, rabbitPassword)
	} else {
		c.CertFile, c.KeyFile = rabbit.Certs[kit].CertFile, rabbit.Certs[kit].KeyFile
	}
	return c
}

func (rabbitBroker) observer(t *testing.T) *mqtt.ClientOptions {
	tlsCfg, err := rabbit.CA.ClientTLS(rabbit.Certs[rabbitmqtest.Observer])
	if err != nil {
		t.Fatal(err)
	}
	return mqtt.NewClientOptions().AddBroker(rabbit.URL).SetTLSConfig(tlsCfg).SetConnectTimeout(10 * time.Second)
}

func (rabbitBroker) addr() string { return rabbit.Addr() }
func (rabbitBroker) stop()        { rabbit.Stop() }
func (rabbitBroker) log() string  { return rabbit.Log() }
func (rabbitBroker) restart(t *testing.T) {
	t.Helper()
	if err := rabbit.Restart(); err != nil {
		t.Fatal(err)
	}
}

func TestRabbitMQOutageBySeq(t *testing.T) { outageBySeq(t, rabbitBroker{}) }

func TestRabbitMQWillAndStatus(t *testing.T) { willAndStatus(t, rabbitBroker{}) }

func TestRabbitMQUserAndPassword(t *testing.T) {
	r := rabbitBroker{password: true}
	userAndPassword(t, r, r.kitConfig(t))
}
