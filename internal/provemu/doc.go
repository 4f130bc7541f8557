// Package provemu is a fixture of AWS IoT's fleet provisioning service
// (the "Device provisioning MQTT API"), for kitd's tests and `kitd demo
// --provision`; it is not a replacement for the service.
//
// It connects to an MQTT broker as an ordinary client and answers, in the
// JSON payload format:
//
//   - $aws/certificates/create-from-csr/json with
//     {"certificateSigningRequest"} → .../accepted
//     {"certificateId","certificatePem","certificateOwnershipToken"}: a
//     certificate for the CSR's key signed by the test CA (internal/pki),
//     PENDING_ACTIVATION, its token valid for an hour. Every request makes
//     a new certificate, as AWS does, even for a CSR seen before.
//   - $aws/provisioning-templates/<name>/provision/json with
//     {"certificateOwnershipToken","parameters"} → .../accepted
//     {"deviceConfiguration","thingName"}: the template's pre-provisioning
//     check runs on the parameters, the thing is created (or found), the
//     certificate attached and made ACTIVE, the token used up.
//
// Failures answer on .../rejected with AWS's error form
// {"statusCode","errorCode","errorMessage"}: 400 InvalidPayload (not
// JSON, no or a bad CSR), 400 InvalidCertificateOwnershipToken (unknown,
// expired or already used), 404 ResourceNotFound (no such template), 400
// InvalidParameters (a required parameter missing) and 403 AccessDenied
// (the pre-provisioning check refused). AWS documents the payload form,
// the one-hour token and InvalidCertificateOwnershipToken; the other codes
// are this fixture's choice where AWS's documentation gives none, and kitd
// treats every rejection alike (logged with its code, retried).
//
// One difference cannot be helped: AWS answers only the connection that
// asked, while a broker delivers the replies to every subscriber, so two
// kits onboarding through one emulator at the same moment may see each
// other's replies (kitd refuses a certificate that is not for its key).
//
// Counters (Issued, Certificates) let tests check that a retried or
// resumed onboarding did not leave a second certificate behind.
package provemu
