// Package shadow keeps the AWS IoT device shadow in step with the agent:
// it reports the agent's state (connected, agent, sensors, buffer, the
// firing alerts, the applied remote configuration, mqtt.batch.max_delay
// from the config, and errors), applies desired settings
// (sensors.<name>.interval, sensors.<name>.enabled, mqtt.batch.max_readings)
// all or nothing, echoes them so the delta clears, and persists them so a
// reboot while offline keeps the remote configuration.
//
// It speaks the shadow protocol over the publisher's MQTT session: on
// every connect it subscribes to the reply topics, gets the whole document
// (deltas sent while offline are lost), applies it and reports everything;
// then it applies deltas and update/documents as they come and reports
// changes, at most once per min_report_interval. AWS bills every update,
// so the figures that change with each reading (buffer pending and bytes,
// sensors' last_reading_ts) are not a change by themselves: they ride
// along with a real one or go at most every heartbeat (1h), and an idle
// kit's shadow is quiet (24 updates a day instead of 8,640). Updates carry the document version; a 409 makes it get the
// document again and retry. Requests are matched to replies by
// clientToken, at most ten are in flight (AWS's limit) and each times out.
//
// What comes from the broker is checked before it is believed: a message
// over 128 KiB (AWS IoT's payload limit) is discarded unread; a delta or
// documents version far ahead of the newest one seen makes the session
// get the document again rather than ignore every real delta after it;
// and a document that says connected is not true while the session is up
// (a late Will of an earlier connection, mirrored by a status rule) is
// answered with connected:true.
//
// The contract (paths, forms, errors) is DESIGN.md's shadow contract;
// docs/aws.md sets up AWS IoT Core for it. The shadowemu sub-package is a
// test fixture of AWS's service.
package shadow
