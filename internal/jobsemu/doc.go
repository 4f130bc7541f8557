// Package jobsemu is a fixture of AWS IoT Jobs' device side, for kitd's
// tests and `kitd demo --job`; it is not a replacement for the service.
//
// It connects to an MQTT broker as an ordinary client and answers the
// Jobs MQTT API the way AWS documents it ("Jobs device MQTT API
// operations" in the AWS IoT developer guide):
//
//	$aws/things/<thing>/jobs/get                  GetPendingJobExecutions
//	$aws/things/<thing>/jobs/start-next           StartNextPendingJobExecution
//	$aws/things/<thing>/jobs/<jobId>/get          DescribeJobExecution ($next: the next pending)
//	$aws/things/<thing>/jobs/<jobId>/update       UpdateJobExecution
//
// each answered on <topic>/accepted or <topic>/rejected with the request's
// clientToken echoed, and $aws/things/<thing>/jobs/notify-next published
// whenever the thing's next pending execution changes (a job queued ahead
// of nothing, an execution ended, started or timed out).
//
// Executions carry versionNumber (1 when queued, one more on every change)
// and executionNumber (1 for a job's first execution on the thing). The
// rejections are AWS's codes: InvalidJson (not a JSON object),
// InvalidRequest (a bad status, statusDetails over AWS's limits,
// stepTimeoutInMinutes out of 1..10080), ResourceNotFound (no such
// execution, or another executionNumber), VersionMismatch (expectedVersion
// is not the current version; the reply carries executionState),
// InvalidStateTransition (e.g. back to QUEUED) and TerminalStateReached
// (the execution has ended). A step timer (stepTimeoutInMinutes, from
// start-next or an IN_PROGRESS update, restarted by each such update)
// moves an execution still IN_PROGRESS to TIMED_OUT, as the service does;
// Options.Minute shrinks the minute for tests.
//
// Where AWS's documentation is silent the emulator picks one behaviour
// and says so in a comment: start-next on an execution already
// IN_PROGRESS returns it unchanged; statusDetails given in an update
// replace the old ones. Executions live in memory only.
//
// Tests queue a document with Queue, watch the status history with
// History or OnChange, and make a request look lost with Drop.
package jobsemu
