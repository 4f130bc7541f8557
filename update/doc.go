// Package update is kitd's self-update: the kitd.update job operation
// (download, verify, install), the launcher that `kitd run` calls first
// (which version runs, and the one supervised trial of a new version),
// the new version's Trial (Confirm when healthy), and the release tools
// behind `kitd update sign` and `kitd update verify`.
//
// A bad release must never brick a kit nor lose a reading: every way a new
// version can fail (it cannot be started, crashes at start, hangs, never
// connects, or the kit loses power during its trial) brings the previous
// version back without a person, and the job ends FAILED with the reason.
//
// # What is signed
//
// The signature is pure Ed25519 (RFC 8032) over the binary's bytes, the
// whole file, not a digest: what `openssl pkeyutl -sign -rawin` computes
// and `kitd update sign` prints (standard base64, last line of stdout).
// Keys are PEM: the private key PKCS#8 "PRIVATE KEY" (`openssl genpkey
// -algorithm ed25519`), the public key PKIX "PUBLIC KEY" (`openssl pkey
// -pubout`). The kit holds only the public key, update.public_key_file;
// the file is refused when its group or others may write it (whoever can
// write it chooses what the kit runs). No key configured: every update is
// REJECTED.
//
// # Directory
//
// Everything lives in $STATE_DIRECTORY/update, /var/lib/kitd/update under
// the unit (StateDirectory=kitd): the only place ProtectSystem=strict lets
// the agent write, so /usr/bin/kitd, owned by the .deb, is never touched.
// Without STATE_DIRECTORY (kitd run by hand: nothing would restart it)
// updates are refused and the launcher does nothing.
//
//	state.json                  which version runs; the trial or its outcome
//	versions/1.4.0/kitd         an installed version (mode 0750)
//	versions/1.3.2/kitd         the previous one, kept until the next success
//	download/<sha256>.part      a download in progress, named by its digest
//
// state.json (replaced whole: temp file, fsync, rename, fsync of the
// directory, so a power loss leaves the old or the new file):
//
//	{"current": "1.3.2",          installed version that runs; absent: the packaged binary
//	 "previous": "1.3.1",         what current replaced
//	 "base": {dev, ino, size, mtime_ns},   the packaged binary when current was set
//	 "trial": {"job_id", "from", "to", "health_timeout": "5m0s", "attempts", "started"},
//	 "outcome": {"job_id", "healthy", "from", "to", "reason", "at"}}
//
// # The job
//
// Document: {"operation": "kitd.update", "url", "sha256", "size",
// "signature", "version", "allow_downgrade"?}; unknown fields are refused.
// REJECTED (nothing downloaded): a malformed document (each bad field
// named), a URL that is not https://, no public key, an unreadable key
// file, the same version as the running one, an older version without
// allow_downgrade (semver precedence; a running version that is not semver,
// a development build "dev", is older than every release), or another
// job's trial still pending. The version must be semver: it names its
// directory.
//
// The download goes to download/<sha256>.part over HTTPS, the server
// verified against the system roots (or update.ca_file), TLS 1.2 or later.
// A dropped connection or a stall (60 s without a byte) is resumed with
// "Range: bytes=N-" after a backoff (0.5 s doubling to 30 s; 8 attempts in
// a row without a byte end it); a restart of the agent mid-download
// resumes the same way, since the part file is named by the digest. A
// server without range support (200) starts over. More bytes than size,
// announced or sent, end it at once (FAILED, part removed), as does a
// clean end short of size, an HTTP status other than 200/206 that retrying
// cannot fix (403 from an expired presigned URL, 404), or a server that
// fails verification. The presigned URL's query (a credential) appears in
// no log and no reason. Progress (step download, bytes, size) is reported
// at each tenth of the file. size is at most 64 MiB: the signature check
// holds the file in memory.
//
// Then size, sha256 and the signature are checked; a mismatch is FAILED
// and the part file removed (bad bytes are never resumed from). The file
// is renamed to versions/<version>/kitd (mode 0750), both directories are
// fsynced, the trial is written to state.json with the installing
// version's health_timeout, Deps.Restart is called and the execution stays
// IN_PROGRESS. Until this point the running version was never touched.
//
// # The launcher and the trial
//
// `kitd run` calls Launch before it reads its config (a packaged binary
// must be able to hand over to a newer version whose config it cannot
// parse). A process started by a launcher carries KITD_UPDATE_LAUNCHED
// and never launches again, so no state can make an exec loop. In order:
//
//  1. No state, or nothing installed: the packaged binary runs the agent.
//  2. The packaged binary is not the one recorded in base (a .deb was
//     installed, upgraded or downgraded since): the package wins. Installed
//     versions are removed, a pending trial ends failed, and the packaged
//     binary runs. What an administrator installed last wins.
//  3. A trial with attempts > 0: its launcher died with it (power loss,
//     SIGKILL): roll back (below).
//  4. A trial with attempts 0: attempts becomes 1 and is fsynced before
//     the start (a trial gets one start, so a crash of any kind cannot
//     loop). The new version runs as a child with the same arguments; its
//     sd_notify messages go through a proxy socket to systemd as the
//     launcher's (NotifyAccess=main), so READY=1 and the watchdog pings
//     work; a pipe (fd 3) carries "running" (config loaded, buffer open,
//     sensors scheduled) and "healthy" (first broker connection: Confirm
//     has made it current in state.json). SIGTERM, SIGINT and SIGHUP are
//     passed on.
//  5. An installed current version: exec(2) it. If the exec fails (file
//     missing, damaged, wrong architecture), the packaged binary runs.
//
// A trial fails, and is rolled back, when the child:
//
//   - cannot be started, or exits before "running": "crashed at start"
//     with its exit status (a Go panic exits 2, which the unit would not
//     restart: the launcher, not systemd, sees it);
//   - exits after "running" but before "healthy";
//   - is not running by health_timeout: "hung" (SIGTERM, then SIGKILL
//     after 30 s);
//   - is running but not healthy by health_timeout: "never connected";
//   - misses the watchdog (systemd sends SIGABRT to the launcher, which
//     records "hung", passes the signal on and exits 1 to be restarted);
//   - is stopped (systemctl stop, shutdown) before it is healthy.
//
// Rollback records the outcome (FAILED, the reason) in state.json,
// removes the failed version's files and runs the current version again at
// once in the same service start: the packaged binary goes on in-process,
// an installed one is exec'd; after a stop it just exits. Once healthy,
// the child runs until it exits, and its exit status is the service's (a
// signal or the watchdog: 1, so systemd restarts it). The next start execs
// it directly (5).
//
// A confirmation and a deadline can race: the launcher re-reads
// state.json after the child's exit, and a trial the child confirmed is
// kept; the child the deadline stopped is then current and is exec'd, so
// the service goes on.
//
// # Job results
//
// The Jobs client resumes the execution after the restart. In the new
// version, Run waits for Confirm, then SUCCEEDED (details from, to,
// version); a rolled-back trial is reported FAILED by the old version with
// "rolled back to FROM: REASON". A resumed execution with no trial and no
// outcome (the agent was killed mid-download) downloads on from where it
// was. A trial still at attempts 0 on a resumed execution means the agent
// restarted without the launcher: FAILED, not retried.
//
// Readings: the buffer is on disk and the launcher only starts one agent
// at a time, each stopped cleanly where it can be (SIGTERM) and otherwise
// killed, which the buffer survives (buffer/doc.go). Nothing is lost across
// a trial or a rollback; readings the new version took are delivered by
// whichever version runs next.
package update
