package pki

import (
	"crypto/tls"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

// A real handshake with mutual authentication: the server sees the
// client's common name, and a client from another CA is refused.
func TestMutualTLSHandshake(t *testing.T) {
	dir := t.TempDir()
	ca, err := NewCA(dir, "test-ca")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Server("server", "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	cli, err := ca.Client("kit-001", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(cli.KeyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v, %v", fi.Mode(), err)
	}
	scfg, err := ca.ServerTLS(srv)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", scfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	names := make(chan string, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tc := c.(*tls.Conn)
			if err := tc.Handshake(); err != nil {
				names <- "refused"
			} else {
				names <- tc.ConnectionState().PeerCertificates[0].Subject.CommonName
			}
			c.Close()
		}
	}()

	ccfg, err := ca.ClientTLS(cli)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.Dial("tcp", ln.Addr().String(), ccfg)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, c)
	c.Close()
	if got := <-names; got != "kit-001" {
		t.Fatalf("server saw %q", got)
	}

	rogue, err := NewCA(t.TempDir(), "rogue")
	if err != nil {
		t.Fatal(err)
	}
	bad, _ := rogue.Client("kit-001", time.Time{})
	rcfg, _ := rogue.ClientTLS(bad)
	rcfg.RootCAs = ca.Pool()
	if c, err := tls.Dial("tcp", ln.Addr().String(), rcfg); err == nil {
		_, err = c.Read(make([]byte, 1))
		c.Close()
		if err == nil {
			t.Fatal("rogue client read succeeded")
		}
	}
	if got := <-names; got != "refused" {
		t.Fatalf("server accepted rogue client as %q", got)
	}
	if _, err := ca.Client("../x", time.Time{}); err == nil || !strings.Contains(err.Error(), "plain file name") {
		t.Fatalf("path traversal name: %v", err)
	}
}
