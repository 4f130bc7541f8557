// Package shadowemu is a fixture of AWS IoT's Device Shadow service, for
// kitd's tests and `kitd demo`; it is not a replacement for the service.
//
// It connects to an MQTT broker as an ordinary client and answers the
// shadow topics the way AWS does (classic $aws/things/<thing>/shadow/...
// and named .../shadow/name/<name>/...): get, update and delete with their
// accepted and rejected replies, update/delta and update/documents,
// versions, merge with null deleting a key, client tokens echoed, and the
// 400, 404, 409 and 413 rejections. Documents live in memory only. Where
// AWS's documentation is silent the emulator picks one behaviour and says
// so in a comment; a kit must work against AWS itself, which docs/aws.md
// sets up.
package shadowemu
