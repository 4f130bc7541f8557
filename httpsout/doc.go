// Package httpsout delivers the buffer's readings by HTTPS POST instead of
// MQTT (`output: https`): for back ends that take HTTP, such as an API
// Gateway endpoint with an API key, or AWS IoT Core's HTTPS publish
// (https://<endpoint>:8443/topics/<topic>?qos=1, mutual TLS).
//
// # What is sent
//
// Each POST is one message of the wire contract's batch form,
//
//	{"device":"kit-001","epoch":"…","readings":[{"sensor":…,"seq":…,"ts":…,"values":{…}},…]}
//
// with Content-Type application/json, framed by telemetry.AppendBatchStart
// and AppendBatchEnd exactly as the MQTT publisher frames a batch: up to
// https.max_readings readings and https.max_bytes bytes. Gap records ride
// in batches like readings. An alert record goes alone, as the alert
// message ({"device","epoch","alert","state",…}), to the same URL: the
// back end tells them apart by the "alert" key. Records go in seq order
// (there is one stream, so no live-first: an HTTPS kit's backlog drains at
// the speed of its round trips).
//
// # At least once
//
// A record is acknowledged to the buffer only after a 2xx answer to the
// POST that carried it; a kill -9 or power loss before that sends it again.
//
// # Stopping
//
// At a clean stop the sender sends what is pending once more, retrying
// failures briefly, for at most 5 s (as mqtt.shutdown_timeout bounds the
// publisher's flush); what is left stays in the buffer for the next start.
//
// # Failures
//
//   - network errors, timeouts (https.timeout per request), 5xx, 408 and
//     429: the same message is retried after a backoff with full jitter
//     (1 s doubling to 5 min), or after the server's Retry-After (seconds or
//     an HTTP date, at most 15 minutes) when it gives one. Retried for as
//     long as it takes: a back end that is down is an outage, not a reason
//     to lose data.
//   - 401, 403, 404 and 407 say the kit's setup is wrong (a bad API key,
//     a mistyped path: API Gateway answers both with 403), not the
//     readings: retried the same way, with a log line naming https.url
//     and https.api_key_file, so a config mistake never discards the
//     backlog.
//   - any other 4xx (400, 413, 422, …) says this message will
//     never be taken. A batch of several readings is split in half and
//     each half tried on its own, down to single records, so one bad
//     reading does not take its neighbours with it; a single record
//     rejected is discarded (buffer.Discard, reason "discarded": the seq is
//     explained in band by a gap record like any loss), counted in
//     Stats.Rejected and logged with the status and the start of the
//     answer. Never retried forever.
//
// # Authentication
//
// Mutual TLS with https.cert_file and https.key_file (AWS IoT's HTTPS
// endpoint), and/or the header x-api-key read from https.api_key_file
// (API Gateway). Both files follow the key-file rules of internal/safefile
// (regular, bounded, not readable by others). The server is always
// verified: against https.ca_file, or the system roots when it is "".
// TLS 1.2 at least. Neither the key nor the API key is ever logged.
package httpsout
