package jobs

import "context"

// Conn is the MQTT session the client talks through: the publisher's
// *publisher.Session satisfies it. Every call uses QoS 1.
type Conn interface {
	// Publish returns once the broker acknowledged the message, or ctx
	// ended.
	Publish(ctx context.Context, topic string, payload []byte, retained bool) error
	// Subscribe returns once the broker granted the subscription; handler
	// runs on its own goroutine for each message, so it may block.
	Subscribe(ctx context.Context, topic string, handler func(topic string, payload []byte)) error
	// Unsubscribe ends a subscription and its handler.
	Unsubscribe(ctx context.Context, topic string) error
}

// topics are one thing's Jobs topics, exactly as AWS names them.
type topics struct{ prefix string }

func newTopics(thing string) topics { return topics{prefix: "$aws/things/" + thing + "/jobs"} }

func (t topics) notifyNext() string         { return t.prefix + "/notify-next" }
func (t topics) getNext() string            { return t.prefix + "/$next/get" }
func (t topics) startNext() string          { return t.prefix + "/start-next" }
func (t topics) get(jobID string) string    { return t.prefix + "/" + jobID + "/get" }
func (t topics) update(jobID string) string { return t.prefix + "/" + jobID + "/update" }

// fixed are the topics subscribed on every connection, one by one: AWS
// advises against wildcards under $aws/ and explicit topics keep the IoT
// policy exact. A job's own reply topics (<jobId>/get and /update
// accepted and rejected) are subscribed while it runs.
func (t topics) fixed() []string {
	return []string{
		t.notifyNext(),
		t.getNext() + "/accepted", t.getNext() + "/rejected",
		t.startNext() + "/accepted", t.startNext() + "/rejected",
	}
}

func (t topics) perJob(jobID string) []string {
	return []string{
		t.update(jobID) + "/accepted", t.update(jobID) + "/rejected",
		t.get(jobID) + "/accepted", t.get(jobID) + "/rejected",
	}
}
