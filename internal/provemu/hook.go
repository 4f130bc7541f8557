//go:build !kitd_nodemo

// The hook is the only part of provemu that imports the broker library:
// release builds (-tags kitd_nodemo) link provemu through the demo and
// must carry none of mochi (cmd/kitd TestReleaseBuildLinksNoDemoBroker).

package provemu

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"sync"
	"sync/atomic"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// AuthHook is a mochi broker hook that plays AWS IoT's side of the
// certificates the emulator issues: one still PENDING_ACTIVATION (created
// but never registered by the template) is refused at CONNECT, and every
// connection's client id and certificate serial are recorded, so tests can
// see which certificate a kit connected with. Certificates the emulator
// did not issue (the claim, the emulator's own) pass. Give it to the
// broker, then Attach the emulator once it runs.
type AuthHook struct {
	mochi.HookBase
	emu atomic.Pointer[Emulator]
	// Deny, when set, refuses a connection it returns true for (a
	// certificate revoked, or one AWS does not accept for another reason).
	Deny atomic.Pointer[func(Connection) bool]

	mu    sync.Mutex
	conns []Connection
}

// Connection is one CONNECT the hook saw.
type Connection struct {
	ClientID string
	Serial   string // the client certificate's serial, hex
	Refused  bool
}

// ID names the hook.
func (h *AuthHook) ID() string { return "provemu-auth" }

// Provides says which hook methods it has.
func (h *AuthHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mochi.OnConnectAuthenticate, mochi.OnACLCheck}, []byte{b})
}

// Attach makes the hook consult e.
func (h *AuthHook) Attach(e *Emulator) { h.emu.Store(e) }

// OnConnectAuthenticate refuses certificates the emulator issued and the
// template has not activated.
func (h *AuthHook) OnConnectAuthenticate(cl *mochi.Client, _ packets.Packet) bool {
	c := Connection{ClientID: cl.ID}
	if tc, ok := cl.Net.Conn.(*tls.Conn); ok {
		if peer := tc.ConnectionState().PeerCertificates; len(peer) > 0 {
			c.Serial = peer[0].SerialNumber.Text(16)
			sum := sha256.Sum256(peer[0].Raw)
			if e := h.emu.Load(); e != nil {
				e.mu.Lock()
				if cert, ok := e.certs[hex.EncodeToString(sum[:])]; ok && cert.Status != "ACTIVE" {
					c.Refused = true
				}
				e.mu.Unlock()
			}
		}
	}
	if deny := h.Deny.Load(); deny != nil && (*deny)(c) {
		c.Refused = true
	}
	h.mu.Lock()
	h.conns = append(h.conns, c)
	h.mu.Unlock()
	return !c.Refused
}

// OnACLCheck allows every topic (AWS's policies are not emulated).
func (h *AuthHook) OnACLCheck(*mochi.Client, string, bool) bool { return true }

// Connections lists the CONNECTs seen, oldest first.
func (h *AuthHook) Connections() []Connection {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Connection(nil), h.conns...)
}
