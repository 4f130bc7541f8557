package shadow

import "context"

// Conn is the MQTT session the shadow talks through: the publisher's
// *publisher.Session satisfies it. Both calls use QoS 1.
type Conn interface {
	// Publish returns once the broker acknowledged the message, or ctx
	// ended.
	Publish(ctx context.Context, topic string, payload []byte, retained bool) error
	// Subscribe returns once the broker granted the subscription; handler
	// runs on its own goroutine for each message, so it may block.
	Subscribe(ctx context.Context, topic string, handler func(topic string, payload []byte)) error
}

// topics are one shadow's MQTT topics, exactly as AWS names them.
type topics struct {
	prefix string
}

func newTopics(device, name string) topics {
	p := "$aws/things/" + device + "/shadow"
	if name != "" {
		p += "/name/" + name
	}
	return topics{prefix: p}
}

func (t topics) get() string    { return t.prefix + "/get" }
func (t topics) update() string { return t.prefix + "/update" }

// responses are the topics the agent subscribes to, one by one: AWS
// advises against wildcards under $aws/ (it may add topics there), and
// explicit topics keep the IoT policy exact.
func (t topics) responses() []string {
	return []string{
		t.prefix + "/get/accepted",
		t.prefix + "/get/rejected",
		t.prefix + "/update/accepted",
		t.prefix + "/update/rejected",
		t.prefix + "/update/delta",
		t.prefix + "/update/documents",
	}
}
