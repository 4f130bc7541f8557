package publisher

import "errors"

// Errors returned (wrapped) by connection attempts and kept in Stats.LastError.
var (
	// ErrCertRejected is returned when the broker refuses the client
	// certificate during the TLS handshake.
	ErrCertRejected = errors.New("client certificate rejected")
	// ErrNotAuthorized is returned when the broker refuses the CONNECT
	// (CONNACK "not authorized" or "bad user name or password").
	ErrNotAuthorized = errors.New("connection not authorized")
	// ErrDroppedAtConnect is returned when the broker closed the
	// connection before accepting it (EOF or reset during the TLS
	// handshake or before the CONNACK): on AWS IoT, normal for the first
	// connection of a certificate provisioned just in time (JITP/JITR).
	ErrDroppedAtConnect = errors.New("connection closed by the broker before CONNACK")
)

// Errors returned by Run.
var (
	// ErrRunTwice is returned when Run is called on a Publisher that
	// runs or has run: its connection state is not reusable.
	ErrRunTwice = errors.New("publisher: Run called twice")
)

// Errors returned by Session methods.
var (
	// ErrConnectionLost is returned when the session's connection ended
	// before the broker acknowledged.
	ErrConnectionLost = errors.New("publisher: connection lost")
	// ErrSubscribeRefused is returned when the broker answers a SUBSCRIBE
	// with a failure code (on AWS IoT: the policy lacks iot:Subscribe or
	// iot:Receive).
	ErrSubscribeRefused = errors.New("publisher: subscription refused by the broker")
)

// Reasons a connection is ended from our side.
var (
	// errAckTimeout is returned when a PUBACK is overdue: paho would only
	// resend on reconnect (paho #236), so we reconnect.
	errAckTimeout = errors.New("no PUBACK within ack_timeout: reconnecting")
	// errStopping is returned by the delivery loop when Run's context
	// ended and the flush is over.
	errStopping = errors.New("stopping")
)

// Errors returned by Republish.
var (
	// ErrOffline is returned by Republish when no connection is up.
	ErrOffline = errors.New("publisher: not connected")
)
