// Package publisher delivers the buffer's readings to an MQTT broker (AWS
// IoT Core, Mosquitto, the demo's in-process broker) over mutual TLS, at
// least once, and says whether the kit is online.
//
// New checks the mqtt config section and the TLS files; Run owns the
// connection until its context ends; OnConnect hooks (the shadow) get a
// Session for each connection; Stats and Progress report on it.
// Dial makes one connection outside Run, on the same rules but without
// Will, status or buffer, for a one-off exchange (fleet provisioning with
// the claim certificate).
//
// # Connection lifecycle
//
// Run makes one connection at a time, each with a fresh paho client:
// AutoReconnect off, CleanSession on, client id = device id, MQTT 3.1.1
// stated explicitly (otherwise paho retries a refused connect as 3.1,
// doubling what a refusing broker sees), OrderMatters off. The network
// connection is dialled by the package itself: TLS 1.2 or later, the
// broker verified against ca_file with the URL's host as ServerName (SNI),
// the client certificate and key, and ALPN "x-amzn-mqtt-ca" when alpn is
// set (AWS IoT on port 443). The files are read again at every connect, so
// a renewed certificate is used without a restart, and a certificate that
// expires within 30 days is warned about (Stats.CertExpires has the date).
// tcp:// works without TLS for local tests and is logged as insecure.
//
// Brokers that authenticate users (RabbitMQ, NATS, EMQX, Mosquitto with a
// password file) get mqtt.username in CONNECT and the password from
// mqtt.password_file (auth.go): a file with the key file's rules, read
// again at every connect like the TLS files, never in the config, an error
// or a log line. With a user name the client certificate is optional: TLS
// then verifies the broker only. A password is refused over tcp://.
//
// After CONNACK the publisher publishes the online status, starts the
// OnConnect hooks in their own goroutines (never inside paho's OnConnect
// callback, where a blocking call deadlocks the client: paho #208, #473),
// and delivers the buffer. The connection ends when paho reports it lost,
// when a PUBACK is overdue by ack_timeout, or when Run's context ends.
//
// # Backoff
//
// Failed connects and lost connections are followed by a wait drawn
// uniformly between a 1 s floor and a ceiling: 4 s, then 8 s, then 10 s
// for as long as the kit was connected within the last 10 minutes; after
// 10 minutes without a connection the ceiling goes on doubling (16, 32,
// 64 s) up to 2 min. The floor means no tight loop whatever the draw; the
// spread keeps a fleet that lost the broker together from returning
// together (a broker restart drops every kit at the same instant, so even
// the first window is 3 s wide). So a kit is back within 10 s of its
// broker's return after an outage of up to 10 minutes (plus the connect
// itself: a blackholed broker costs up to connect_timeout per attempt),
// and a kit that cannot connect for longer (a broker gone for the day, a
// refused certificate) tries about once a minute instead of keeping a
// cellular link busy with handshakes. TestFleetReconnectSpread models 200
// kits on this schedule with a seeded generator: after outages of 0.5 s to
// 10 min the p95 of the reconnect delay is 3.4-8.1 s (max 9.6 s) and the
// busiest second sees 39-83 of the 200.
//
// The ceiling's steps are reset only after a connection has stayed up
// 30 s, so a broker that accepts and then drops the kit (a duplicate client
// id, a policy violation) meets it every 1-10 s, never at the floor rate.
// Short connections still restart the 10-minute clock: under fast flaps
// (a link cut every few seconds) pauses stay within 10 s; they used to
// climb to 2 min and stay there, the ceiling never being reset. A
// connection closed within 10 s of connecting after the kit published is
// logged once per streak as the likely policy
// problem it is on AWS IoT ("the broker closed the connection right after
// a publish to TOPIC: on AWS IoT this usually means the policy does not
// allow iot:Publish on it"). A refused client certificate, a broker
// certificate that does not verify and a refused CONNECT are each named
// (ErrCertRejected, ErrNotAuthorized). The very first attempt closed by
// the broker before it was accepted (ErrDroppedAtConnect) is what AWS IoT
// does while it provisions a certificate just in time (JITP/JITR): it is
// logged once at info level and retried at the backoff's floor, not
// counted. Identical log lines, numbers aside,
// are folded to one per 15 minutes with repeated=N (package logdedup): a
// broker down for a day costs a few dozen lines, not thousands.
//
// # Messages the broker will not take
//
// A broker with a maximum packet size (Mosquitto's max_packet_size) closes
// the connection on a larger PUBLISH and says nothing else; without care
// the same message is resent at every connect and delivery stalls forever.
// mqtt.max_packet_bytes packs under the limit from the start. Otherwise
// reapAll hands the oldest unacknowledged message of a lost connection to
// noteUnacked: if it was sent within 5 s of the loss and is larger than any
// message the broker ever acknowledged and than 1 KiB, that is a strike. Three strikes
// against the same message (six for a lone reading while nothing was ever
// acknowledged) make a batch shrink the packing limit to half its size and a
// lone reading go (Buffer.Discard: in band, reason discarded). A flapping
// broker never strikes with messages of a size it took before. The loss is
// then logged as a size problem, not as the AWS policy problem a young loss
// after a publish otherwise suggests.
//
// # Delivery, live first
//
// At each connect the publisher notes live := buffer.NextSeq() and keeps
// two readers: live (seq >= live, no end) and backlog (seq < live). Every
// free slot of the in-flight window goes to the live reader while it has
// anything (the buffer's Notify says when to look), and to the backlog
// otherwise. After an outage a fresh reading therefore waits behind at
// most one window plus one packed message, never behind a day of backlog;
// consumers order by seq, not by arrival. With batch.max_readings 1 each
// reading is one message in DESIGN.md's single form, otherwise readings are
// packed in the batch form up to max_readings and under max_bytes (each
// encoded once, straight into the message); a batch takes what is
// available. With batch.max_delay (linger.go) a live batch waits, up to
// max_delay after its first reading, for max_readings or max_bytes to be
// reached, so a kit sends one message a minute instead of hundreds; the
// backlog never waits, a stop sends the waiting batch at once, and a kill
// -9 meanwhile loses nothing (its readings are unacknowledged in the
// buffer). Unsynced readings from this boot are re-stamped at send time
// once the clock has synced.
//
// # Alerts first
//
// Alert records (package alerts; telemetry's record kind 3) sit in the
// buffer among the readings. A third reader, kept across connections,
// looks at each record's kind byte once and queues the alerts; every
// message slot goes to that queue first, one alert per message on
// alert_topic, and the live and backlog readers skip alert records
// (alerts.go). An alert thus waits behind at most one packed message and
// the window, never behind the backlog or a batch.
//
// # Acknowledgement rules
//
//   - QoS 1 everywhere: AWS IoT has no QoS 2, and a QoS 2 Will makes it
//     drop the connection.
//   - A record is acknowledged to the buffer only after the broker's PUBACK
//     for the message carrying it (all seqs of a batch at once). The buffer
//     is the only record of what is delivered; paho keeps nothing but the
//     in-flight window and forgets it with the connection. A resumed paho
//     session can report a publish complete that never arrived (paho #563,
//     #458 with AWS IoT): hence clean sessions, a fresh client each time,
//     and the buffer resending whatever was not acknowledged.
//   - At most max_inflight messages await a PUBACK. One that waits longer
//     than ack_timeout ends the connection without a DISCONNECT (the broker
//     publishes the Will): paho resends unacknowledged QoS 1 only on
//     reconnect (paho #236), so a stuck window must force one.
//   - No unbounded waits on paho: never token.Wait (it can hang forever,
//     paho #613), always a select on Done with a timer or a context; and
//     paho's Publish, which can block for its write timeout when the
//     connection dies under it, is called from a pump goroutine, never from
//     the loop that watches for lost connections, overdue acks and shutdown.
//   - A record that does not decode, or a reading larger than max_bytes, is
//     logged, acknowledged and counted (Stats.Discarded): bad bytes are
//     data, never a crash loop.
//   - max_publish_rate is a token bucket over messages (telemetry, status
//     and Session publishes together) with a burst of a tenth of a second,
//     so no one-second window exceeds the rate by more than 10% (AWS IoT
//     allows 100 publishes/s per connection). A bucket that runs dry
//     refills completely before it gives again: at the rate, messages go
//     in bursts every tenth of a second, one wake-up per burst rather
//     than per message (ratelimit.go). A shadow or jobs message that comes
//     while the bucket refills waits for it, up to a tenth of a second.
//
// # Status and Last Will
//
// The Will, set on every CONNECT, is {"state":{"reported":{"connected":false}}}
// on status_topic, QoS 1, retained (status_retain). On connect the
// publisher sends {"state":{"reported":{"connected":true}},"ts":"…"},
// retained, QoS 1. On a clean shutdown (Run's context ends) it flushes
// what the buffer holds for most of shutdown_timeout, publishes the
// connected:false payload itself (a DISCONNECT makes the broker discard the
// Will), disconnects, waits for the OnConnect hooks, and returns nil, all
// within shutdown_timeout, counted from the stop. A stop that comes while
// connected:true awaits its PUBACK waits a tenth of the budget for it, then
// flushes as any other. The payloads are shaped like shadow updates so
// an AWS IoT rule can republish them to the shadow (AWS ignores a Will on
// $aws/ topics, so status_topic may not be one).
//
// # Sessions
//
// Session.Publish and Session.Subscribe are QoS 1 and wait for the broker
// within the caller's context and ack_timeout. Subscription handlers run
// one at a time on a goroutine of the session, so they may block or
// publish; with OrderMatters off paho hands each message over on its own
// goroutine, so handlers must not rely on arrival order (the shadow's
// versions give order). Subscriptions end with their connection: clean
// sessions, so subscribe again in the OnConnect hook.
package publisher
