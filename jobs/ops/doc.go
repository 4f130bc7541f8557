// Package ops holds kitd's job operations other than kitd.update: each is
// a jobs.Operation built over small interfaces the agent satisfies, so
// this package knows nothing of the agent's structure.
//
//	kitd.read-now    {"sensors": ["soil-1"]}        read now, publish through the buffer
//	kitd.resend      {"from": 100, "to": 200}       deliver a seq range again
//	kitd.restart     {}                             clean restart (systemd starts kitd again)
//	kitd.set-config  {"desired": {...}}             the shadow's desired-state keys, all or nothing
//
// Each document may also carry the client's own fields, "operation" and
// "step_timeout_minutes"; any other unknown field is REJECTED, as an
// unknown config key is an error. What each operation guarantees and
// reports is in its type's comment and in the README (Remote operations).
package ops
