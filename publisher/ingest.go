package publisher

import (
	"fmt"
	"strings"

	"github.com/kitd-dev/kitd/internal/ident"
)

// AWS IoT Basic Ingest: a message published to $aws/rules/RULE/REST goes
// straight to the rule named RULE, as if published to REST, without the
// message broker and without its messaging charge (the rule's actions are
// still billed). Nobody can subscribe to such a topic, so it suits
// telemetry only: the status (a Last Will is never published on $aws/
// topics) and the shadow keep their topics. The device policy grants
// iot:Publish on topic/$aws/rules/RULE/REST.

// basicIngestPrefix starts a Basic Ingest topic.
const basicIngestPrefix = "$aws/rules/"

// validRuleName is AWS IoT's rule name form.
func validRuleName(s string) bool { return ident.Valid(s, 1, 128, "", ident.Alnum+"_") }

// maxIngestSlashes: AWS allows at most 7 slashes in a topic beyond the
// three of the $aws/rules/RULE/ prefix.
const maxIngestSlashes = 7

// validateBasicIngest checks a telemetry topic under $aws/: only Basic
// Ingest's $aws/rules/RULE/... is allowed (the other $aws/ topics are AWS's
// own, the shadow's among them), with a valid rule name and no {device} in
// it ({device} may appear in the rest, one rule serving every kit).
func validateBasicIngest(topic string) error {
	if !strings.HasPrefix(topic, "$aws/") {
		return nil
	}
	if !strings.HasPrefix(topic, basicIngestPrefix) {
		return fmt.Errorf("%q: $aws/ topics are AWS IoT's own; the only one for telemetry is Basic Ingest, $aws/rules/RULE_NAME/kits/{device}/telemetry", topic)
	}
	rule, rest, _ := strings.Cut(strings.TrimPrefix(topic, basicIngestPrefix), "/")
	if !validRuleName(rule) {
		return fmt.Errorf("%q: %q is not an AWS IoT rule name (letters, digits and _, at most 128): Basic Ingest topics are $aws/rules/RULE_NAME/TOPIC", topic, rule)
	}
	if rest == "" {
		return fmt.Errorf("%q: add the topic the rule's SQL selects after the rule name, e.g. %skits/{device}/telemetry", topic, basicIngestPrefix+rule+"/")
	}
	if strings.Count(rest, "/") > maxIngestSlashes {
		return fmt.Errorf("%q: AWS IoT allows at most %d slashes after %s", topic, maxIngestSlashes, basicIngestPrefix+rule+"/")
	}
	return nil
}
