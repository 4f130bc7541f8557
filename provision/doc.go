// Package provision gives a kit its own AWS IoT identity by fleet
// provisioning by claim, keeps it on disk so that a crash at any step
// leaves either the claim identity or the complete new one, and renews the
// certificate before it expires.
//
// # Protocol
//
// AWS IoT's "Device provisioning MQTT API", JSON payload format, QoS 1,
// subscribing to the /accepted and /rejected replies before each request
// (AWS answers only subscribers):
//
//	$aws/certificates/create-from-csr/json
//	    → {"certificateSigningRequest": PEM}
//	    ← accepted {"certificateId","certificatePem","certificateOwnershipToken"}
//	$aws/provisioning-templates/<template>/provision/json
//	    → {"certificateOwnershipToken","parameters":{…}}
//	    ← accepted {"deviceConfiguration":{…},"thingName"}
//	either  ← rejected {"statusCode","errorCode","errorMessage"} (RejectedError)
//
// Onboard makes its own connection with the claim certificate (client id
// "claim-<serial>", no Will, no status: publisher.Dial). Renew runs the
// same two requests over the kit's own connection (the publisher's
// OnConnect Session): CreateCertificateFromCsr alone leaves the new
// certificate PENDING_ACTIVATION, and it is RegisterThing with the
// template that activates it and attaches it to the kit's thing.
//
// The key is ECDSA P-256, made on the kit; it never leaves the device and
// is never logged (errors about key files never quote them). Parameters
// are the config's, with {serial} (device tree serial-number, else
// /proc/cpuinfo Serial, else the first MAC), {hostname} and {mac} filled
// in (Sources, replaceable in tests).
//
// # Directory (provisioning.dir)
//
//	identity.pem   the kit's identity: a "KITD IDENTITY" block whose
//	               headers hold Thing-Name, Certificate-Id, Template and
//	               Created; the certificate; the PKCS#8 private key. Both
//	               mqtt.cert_file and mqtt.key_file point at it.
//	pending.pem    an onboarding or renewal under way: a "KITD PENDING"
//	               block (Purpose onboard|renew, Created, and once issued
//	               Certificate-Id, Ownership-Token, Token-Time); the CSR;
//	               the key; the issued certificate.
//	previous.pem   after a renewal, the identity it replaced, kept until
//	               the new one has connected (Confirm) or put back if the
//	               broker refuses the new one (Restore).
//
// Every file is 0640 from its creation (the service's group may read it,
// others never) and written atomically: a temporary file in the same
// directory, written, fsynced, renamed over the name, then the directory
// fsynced. One file per state means one rename commits it: the
// certificate and its key can never be out of step.
//
// # Steps, and what a crash at each leaves
//
//  1. Key and CSR made, written to pending.pem (FPAfterKey). A crash
//     before the write leaves nothing; after it, the next start reuses
//     the key and CSR.
//  2. CreateCertificateFromCsr accepted; certificate and token written to
//     pending.pem before the token is used (FPAfterCertificate). A crash
//     before the write leaves a certificate the kit never learnt of: AWS
//     deletes it with its token after an hour, as it was never registered.
//     After the write, the next start goes straight to step 3 with it.
//     A token older than 50 minutes, or refused as invalid, is replaced by
//     a new certificate for the same CSR (the old one expires unused).
//  3. RegisterThing accepted (FPBeforeIdentity), identity.pem written:
//     the commit (FPAfterIdentity), then pending.pem removed. A crash
//     between the reply and the write leaves pending.pem with the
//     certificate and its token, so the next start registers again with
//     the same token: the template's resources exist by then, and the
//     answer names the same thing, with one certificate. AWS documents
//     the token's hour but not whether it may be used twice; should the
//     service refuse it, the kit falls back as for an old token (a new
//     certificate for the same key) and the first stays attached, unused
//     (docs/aws.md, "Revoke a kit", removes it). The window is the time
//     of one fsync.
//
// A refusal by the template (its pre-provisioning hook, a missing
// parameter) keeps pending.pem: the retry registers the same certificate.
//
// # Renewal
//
// Config.RenewalDue says when (the certificate expires within
// renew_before). Renew commits the new identity with the old one saved as
// previous.pem; the publisher reads identity.pem at every connect, so the
// new certificate is used from the next connection. A failure at any step
// leaves identity.pem as it was; a renewal that comes back with another
// thing name is refused (ErrThingChanged). The agent (agent/identity.go)
// runs Renew from an OnConnect hook, retried with backoff while connected,
// restarts delivery on success, calls Confirm when the new identity has
// connected, and Restore when the broker refused it three times in a row
// before it ever connected (renewal then pauses an hour).
package provision
