//go:build mosquitto || rabbitmq || nats

package publisher

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/internal/mosquittotest"
)

// MQTT control packet types, as the proxy needs them.
const (
	pktPublish = 3
	pktPuback  = 4
)

// proxy sits between the publisher and Mosquitto. Raw, it forwards bytes
// and lets the test cut every connection at once (an unclean loss: the
// broker publishes the Will). Terminating TLS, it presents a server
// certificate from the broker's CA, requires the kit's client certificate,
// connects on to Mosquitto as the kit, and reads MQTT packets: it can cut
// the connection right after a PUBLISH to a topic (what AWS IoT does on a
// policy violation) and swallow PUBACKs (a broker that stops acking).
type proxy struct {
	t       testing.TB
	ln      net.Listener
	address string
	target  string
	// serverTLS terminates the client's TLS; nil forwards raw bytes.
	serverTLS *tls.Config
	clientTLS *tls.Config

	// cutAfterPublishTo cuts after forwarding a PUBLISH to this topic.
	cutAfterPublishTo string
	// cutAfterAckOf cuts after forwarding the PUBACK of a PUBLISH to this
	// topic.
	cutAfterAckOf string
	// dropAcksOf swallows the PUBACKs of PUBLISHes to this topic on the
	// first dropAcksConns connections.
	dropAcksOf    string
	dropAcksConns atomic.Int64
	// holdAcksOf holds the PUBACKs of PUBLISHes to this topic until
	// releaseAcks is closed.
	holdAcksOf  string
	releaseAcks chan struct{}

	accepts atomic.Int64
	cuts    atomic.Int64
	hello   atomic.Pointer[tls.ClientHelloInfo]
	alpn    atomic.Pointer[string]

	mu      sync.Mutex
	conns   []net.Conn
	blocked bool
	// acceptedAt is when each connection was accepted, taken before the
	// proxy forwards a byte of it: the kit's wait before its next attempt
	// starts after that, so the gaps are lower bounds of its backoff
	// however slow the machine is.
	acceptedAt []time.Time
}

// newRawProxy forwards TCP to the broker.
func newRawProxy(t testing.TB, b *mosquittotest.Broker) *proxy {
	return startProxy(t, &proxy{target: b.Addr()})
}

// newMQTTProxy terminates TLS so it can read the kit's MQTT packets.
func newMQTTProxy(t testing.TB, b *mosquittotest.Broker, nextProtos ...string) *proxy {
	t.Helper()
	pair, err := b.CA.Server("proxy", "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{target: b.Addr()}
	if p.serverTLS, err = b.CA.ServerTLS(pair); err != nil {
		t.Fatal(err)
	}
	p.serverTLS.NextProtos = nextProtos
	p.serverTLS.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		p.hello.Store(h)
		return nil, nil
	}
	if p.clientTLS, err = b.CA.ClientTLS(b.Certs[kit]); err != nil {
		t.Fatal(err)
	}
	return startProxy(t, p)
}

func startProxy(t testing.TB, p *proxy) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.t, p.ln, p.address = t, ln, ln.Addr().String()
	go p.serve(ln)
	t.Cleanup(func() {
		p.block()
	})
	return p
}

func (p *proxy) addr() string { return p.address }

// url is the broker URL that reaches the broker through the proxy.
func (p *proxy) url() string { return "tls://" + p.address }

// block stops listening (connections are refused, as by a stopped broker)
// and cuts the connections there are.
func (p *proxy) block() {
	p.mu.Lock()
	if !p.blocked {
		p.blocked = true
		p.ln.Close()
	}
	p.mu.Unlock()
	p.cutAll()
}

// unblock listens again on the same address.
func (p *proxy) unblock() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.blocked {
		return
	}
	ln, err := net.Listen("tcp", p.address)
	if err != nil {
		p.t.Fatalf("proxy listen again: %v", err)
	}
	p.ln, p.blocked = ln, false
	go p.serve(ln)
}

func (p *proxy) track(cs ...net.Conn) {
	p.mu.Lock()
	p.conns = append(p.conns, cs...)
	p.mu.Unlock()
}

// cutAll closes every connection both ways without a word.
func (p *proxy) cutAll() {
	p.mu.Lock()
	cs := p.conns
	p.conns = nil
	p.mu.Unlock()
	for _, c := range cs {
		c.Close()
	}
}

func (p *proxy) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.acceptedAt = append(p.acceptedAt, time.Now())
		p.mu.Unlock()
		n := p.accepts.Add(1)
		go p.handle(c, n)
	}
}

func (p *proxy) handle(client net.Conn, n int64) {
	p.track(client)
	if p.serverTLS == nil {
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			return
		}
		p.track(up)
		go func() { io.Copy(up, client); up.Close() }()
		io.Copy(client, up)
		client.Close()
		return
	}
	tc := tls.Server(client, p.serverTLS)
	if err := tc.Handshake(); err != nil {
		client.Close()
		return
	}
	proto := tc.ConnectionState().NegotiatedProtocol
	p.alpn.Store(&proto)
	up, err := tls.Dial("tcp", p.target, p.clientTLS)
	if err != nil {
		client.Close()
		return
	}
	p.track(up)
	dropAcks := n <= p.dropAcksConns.Load()
	cut := func() {
		p.cuts.Add(1)
		up.Close()
		client.Close()
	}
	var mu sync.Mutex
	topicOf := map[uint16]string{} // packet id → topic of the kit's PUBLISH
	// kit → broker
	go func() {
		r := bufio.NewReader(tc)
		for {
			pkt, err := readPacket(r)
			if err != nil {
				cut()
				return
			}
			if pkt[0]>>4 == pktPublish {
				topic, id := publishTopic(pkt)
				mu.Lock()
				topicOf[id] = topic
				mu.Unlock()
			}
			if _, err := up.Write(pkt); err != nil {
				cut()
				return
			}
			if p.cutAfterPublishTo != "" && pkt[0]>>4 == pktPublish {
				if topic, _ := publishTopic(pkt); topic == p.cutAfterPublishTo {
					cut()
					return
				}
			}
		}
	}()
	// broker → kit
	r := bufio.NewReader(up)
	for {
		pkt, err := readPacket(r)
		if err != nil {
			client.Close()
			return
		}
		var ackOf string
		if pkt[0]>>4 == pktPuback && len(pkt) == 4 {
			mu.Lock()
			ackOf = topicOf[binary.BigEndian.Uint16(pkt[2:])]
			mu.Unlock()
		}
		if dropAcks && ackOf != "" && ackOf == p.dropAcksOf {
			continue
		}
		if ackOf != "" && ackOf == p.holdAcksOf {
			<-p.releaseAcks
		}
		if _, err := tc.Write(pkt); err != nil {
			up.Close()
			return
		}
		if ackOf != "" && ackOf == p.cutAfterAckOf {
			cut()
			return
		}
	}
}

// readPacket reads one MQTT control packet: fixed header, remaining length
// (variable byte integer), body.
func readPacket(r *bufio.Reader) ([]byte, error) {
	h, err := r.ReadByte()
	if err != nil {
		return nil, err
	}
	pkt := []byte{h}
	length, mult := 0, 1
	for i := 0; ; i++ {
		if i == 4 {
			return nil, errors.New("malformed remaining length")
		}
		b, err := r.ReadByte()
		if err != nil {
			return nil, err
		}
		pkt = append(pkt, b)
		length += int(b&0x7f) * mult
		mult *= 128
		if b&0x80 == 0 {
			break
		}
	}
	start := len(pkt)
	pkt = append(pkt, make([]byte, length)...)
	if _, err := io.ReadFull(r, pkt[start:]); err != nil {
		return nil, err
	}
	return pkt, nil
}

// publishTopic is a PUBLISH packet's topic name and packet id (0 at QoS 0).
func publishTopic(pkt []byte) (string, uint16) {
	i := 1
	for pkt[i]&0x80 != 0 {
		i++
	}
	i++
	if len(pkt) < i+2 {
		return "", 0
	}
	n := int(binary.BigEndian.Uint16(pkt[i:]))
	if len(pkt) < i+2+n {
		return "", 0
	}
	topic := string(pkt[i+2 : i+2+n])
	var id uint16
	if qos := pkt[0] >> 1 & 3; qos > 0 && len(pkt) >= i+4+n {
		id = binary.BigEndian.Uint16(pkt[i+2+n:])
	}
	return topic, id
}

// acceptTimes is when each connection so far was accepted, oldest first.
func (p *proxy) acceptTimes() []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Time(nil), p.acceptedAt...)
}

func (p *proxy) String() string { return fmt.Sprintf("proxy %s → %s", p.addr(), p.target) }
