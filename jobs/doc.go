// Package jobs runs AWS IoT Jobs executions on a kit: the owner creates a
// job (`aws iot create-job`) whose document names an operation
// ("kitd.read-now", "kitd.resend", "kitd.restart", "kitd.set-config",
// "kitd.update"), and the kit runs it and reports the result on the
// execution, where `aws iot describe-job-execution` reads it.
//
// The client speaks the Jobs MQTT API ("Jobs device MQTT API operations"
// in the AWS IoT developer guide) over the publisher's session: New makes
// a Client with the operations by name; register Client.OnConnect with
// publisher.OnConnect. It runs only while connected; offline nothing
// waits on it, and it never touches the buffer or the scheduler itself
// (operations do, as any caller of theirs would).
//
// # Topics
//
// All under $aws/things/<thing>/jobs/, subscribed one by one as AWS
// advises (no wildcards under $aws/, which also keeps the IoT policy
// exact, deploy/aws/jobs-policy.json):
//
//	notify-next                     the next pending execution changed
//	$next/get[/accepted|/rejected]  the next pending execution (IN_PROGRESS first, else QUEUED)
//	start-next[/accepted|/rejected] QUEUED → IN_PROGRESS, with statusDetails and stepTimeoutInMinutes
//	<jobId>/update[/...]            status, statusDetails, expectedVersion, executionNumber,
//	                                includeJobExecutionState, stepTimeoutInMinutes
//	<jobId>/get[/...]               one execution, after a VersionMismatch
//
// The per-job reply topics are subscribed while the job runs and
// unsubscribed after: AWS allows 50 subscriptions per connection. Every
// request carries a clientToken ("kitd-<random>-<n>", under AWS's 64
// characters) and waits at most 10 s for its reply; a message over 128 KB
// (AWS's payload limit) is discarded unread.
//
// # One execution at a time, in order
//
// On every connect, and on each notify-next, the client gets $next: the
// service's order (IN_PROGRESS executions first, then QUEUED by queue
// time). A QUEUED execution is started with start-next; the job document's
// "operation" picks the Operation, which runs on its own goroutine while
// the client waits. Nothing else runs until it ends. Idle, the client also
// looks again every 15 minutes in case a notification was lost.
//
// # Statuses and details
//
// While running, the execution is IN_PROGRESS and its statusDetails hold
// "attempt" (the agent starts that ran it) and whatever the operation
// reports through Execution.Progress. It ends SUCCEEDED, FAILED or
// REJECTED with the operation's details, a "reason" when not SUCCEEDED.
// REJECTED is for documents the kit will not run: not a JSON object, no
// "operation", an unknown one ("known" lists the operations), a bad
// "step_timeout_minutes", or an operation's own fields wrong (an unknown
// field too: a typo must not be ignored, DecodeParams). statusDetails are
// made to fit AWS's limits before they are sent, never refused for their
// form: at most 10 pairs (the last says "details_left_out": N), keys of
// 1..128 of [a-zA-Z0-9:_-] (other characters become '_'), values of
// 1..1024 characters without control characters (cut with "…").
//
// # Versions
//
// Every update carries expectedVersion (the versionNumber last seen) and
// the executionNumber. VersionMismatch or InvalidStateTransition makes the
// client get the execution again: still QUEUED or IN_PROGRESS, the update
// is retried with the service's version (up to 3 times); ended meanwhile
// (CANCELED, TIMED_OUT, REMOVED), like TerminalStateReached and
// ResourceNotFound, it is ErrNotInProgress: Progress returns it, so the
// operation can stop, and a result is logged, not reported.
//
// # Step timeouts
//
// Each execution has a step timeout: the document's
// "step_timeout_minutes" (1..10080, AWS's range), else 10 minutes. It is
// sent as stepTimeoutInMinutes with start-next and every IN_PROGRESS
// update, so the service's own timer marks an execution TIMED_OUT if the
// kit goes silent for that long (a kit that never comes back never leaves
// it IN_PROGRESS forever). The client cancels the operation's context at
// 90% of it and reports FAILED ("step timeout of N minutes exceeded; the
// operation was cancelled"), so the reason reaches the service before its
// timer, which would say nothing of why; an operation that ignores its
// context is given 10 s, then FAILED is reported without it.
//
// # Stops, restarts and resumption
//
// An execution found IN_PROGRESS that this process did not start was
// started before the agent (re)started: a clean stop, kill -9, power loss
// or a restart an operation arranged. It is resumed: the client reports
// IN_PROGRESS with attempt+1 (restarting the service's step timer) and
// runs the operation with Execution.Resumed set and the StatusDetails it
// left, so the operation can finish (kitd.restart reports SUCCEEDED) or
// run again (read-now, resend and set-config are safe to repeat). After
// MaxStarts (5) starts the execution is FAILED instead ("the agent stopped
// 5 times while this job was in progress"): a job that crashes the agent
// must not crash it forever. An execution this process started and
// finds IN_PROGRESS again after a reconnect is run again, not counted.
//
// An operation that returns a Result with Status "" has arranged a
// restart (kitd.restart, kitd.update): the execution stays IN_PROGRESS
// and this process leaves it, and everything queued behind it, alone; the
// next process resumes it. A lost connection cancels the running
// operation; the next connection takes the execution up again. A result
// an operation returned that did not reach the service (the connection
// ended, or no answer within 10 s) is reported again by this process
// without running the operation a second time; only a new process runs
// it again.
//
// jobsemu (internal/jobsemu) is a fixture of the service's device side for
// the tests and `kitd demo --job`.
package jobs
