package shadow

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The AWS files docs/aws.md tells users to install. The device policy
// must grant exactly what the agent uses and nothing wider.

const deployDir = "../deploy/aws"

// The publisher's default topics (DESIGN.md's config contract); the
// shadow's topics come from this package's code, so a change there that
// the policy does not follow fails here.
const (
	defaultTelemetryTopic = "kits/{device}/telemetry"
	defaultStatusTopic    = "kits/{device}/status"
	thingVar              = "${iot:Connection.Thing.ThingName}"
	arnPrefix             = "arn:aws:iot:REGION:ACCOUNT_ID:"
)

type policyDoc struct {
	Version   string
	Statement []struct {
		Sid       string
		Effect    string
		Action    stringList
		Resource  stringList
		Condition map[string]map[string]string
	}
}

// stringList is IAM's "one string or a list of strings".
type stringList []string

func (s *stringList) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*s = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*s = many
	return nil
}

func readJSON(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployDir, name))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func TestDeployFilesAreJSON(t *testing.T) {
	ents, err := os.ReadDir(deployDir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if filepath.Ext(e.Name()) != ".json" {
			continue
		}
		n++
		b, _ := os.ReadFile(filepath.Join(deployDir, e.Name()))
		if !json.Valid(b) {
			t.Errorf("%s is not valid JSON", e.Name())
		}
	}
	if n < 5 {
		t.Fatalf("%d JSON files in %s", n, deployDir)
	}
}

// noWildcards refuses iot:* and * actions and a bare * resource in any
// IAM policy shipped.
func noWildcards(t *testing.T, name string, p policyDoc) {
	t.Helper()
	if p.Version != "2012-10-17" {
		t.Errorf("%s: Version %q", name, p.Version)
	}
	for _, st := range p.Statement {
		if st.Effect != "Allow" {
			t.Errorf("%s: %s: effect %q", name, st.Sid, st.Effect)
		}
		for _, a := range st.Action {
			if strings.Contains(a, "*") {
				t.Errorf("%s: %s: wildcard action %q", name, st.Sid, a)
			}
		}
		for _, r := range st.Resource {
			if r == "*" || strings.HasSuffix(r, ":*") {
				t.Errorf("%s: %s: wildcard resource %q", name, st.Sid, r)
			}
		}
	}
}

func TestDevicePolicyLeastPrivilege(t *testing.T) {
	var p policyDoc
	readJSON(t, "policy.json", &p)
	noWildcards(t, "policy.json", p)
	// A kit's policy names its own topics only: no wildcard anywhere.
	for _, st := range p.Statement {
		for _, r := range st.Resource {
			if strings.ContainsAny(r, "*+#") {
				t.Errorf("%s: wildcard in %q", st.Sid, r)
			}
			if !strings.HasPrefix(r, arnPrefix) || !strings.Contains(r, thingVar) {
				t.Errorf("%s: %q is not scoped to the connecting thing", st.Sid, r)
			}
		}
	}

	grants := map[string]bool{} // action + " " + resource
	for _, st := range p.Statement {
		for _, a := range st.Action {
			for _, r := range st.Resource {
				grants[a+" "+r] = true
			}
		}
	}
	need := func(action, kind, name string) {
		t.Helper()
		r := arnPrefix + kind + "/" + name
		if !grants[action+" "+r] {
			t.Errorf("policy lacks %s on %s", action, r)
		}
		delete(grants, action+" "+r)
	}
	dev := func(topic string) string { return strings.ReplaceAll(topic, "{device}", thingVar) }
	tp := newTopics(thingVar, "")

	need("iot:Connect", "client", thingVar)
	need("iot:Publish", "topic", dev(defaultTelemetryTopic))
	need("iot:Publish", "topic", dev(defaultStatusTopic))
	need("iot:RetainPublish", "topic", dev(defaultStatusTopic))
	need("iot:Publish", "topic", tp.get())
	need("iot:Publish", "topic", tp.update())
	for _, r := range tp.responses() {
		need("iot:Subscribe", "topicfilter", r)
		need("iot:Receive", "topic", r)
	}
	for g := range grants {
		t.Errorf("policy grants more than the agent uses: %s", g)
	}

	for _, st := range p.Statement {
		if len(st.Action) == 1 && st.Action[0] == "iot:Connect" {
			if st.Condition["Bool"]["iot:Connection.Thing.IsAttached"] != "true" {
				t.Errorf("connect is not limited to a certificate attached to the thing: %v", st.Condition)
			}
		}
	}
}

type topicRule struct {
	Description      string
	SQL              string `json:"sql"`
	AwsIotSqlVersion string
	RuleDisabled     bool
	Actions          []map[string]map[string]any
}

func TestStatusRuleRepublishesToShadow(t *testing.T) {
	var r topicRule
	readJSON(t, "status-rule.json", &r)
	// The rule listens where the publisher writes status, and takes the
	// thing name from the topic level that holds {device}.
	filter := strings.ReplaceAll(defaultStatusTopic, "{device}", "+")
	if r.SQL != "SELECT state FROM '"+filter+"'" {
		t.Fatalf("sql %q", r.SQL)
	}
	level := 0
	for i, part := range strings.Split(defaultStatusTopic, "/") {
		if part == "{device}" {
			level = i + 1
		}
	}
	if len(r.Actions) != 1 || r.Actions[0]["republish"] == nil {
		t.Fatalf("actions %v", r.Actions)
	}
	rp := r.Actions[0]["republish"]
	want := "$$aws/things/${topic(" + string(rune('0'+level)) + ")}/shadow/update"
	if rp["topic"] != want {
		t.Fatalf("republish topic %v, want %s ($$ escapes a reserved topic)", rp["topic"], want)
	}
	if rp["qos"] != float64(1) || r.RuleDisabled || r.AwsIotSqlVersion != "2016-03-23" {
		t.Fatalf("rule %+v", r)
	}
}

func TestMoistureAlertRule(t *testing.T) {
	var r topicRule
	readJSON(t, "moisture-alert-rule.json", &r)
	filter := strings.ReplaceAll(defaultTelemetryTopic, "{device}", "+")
	if r.SQL != "SELECT * FROM '"+filter+"' WHERE values.moisture < 35" {
		t.Fatalf("sql %q", r.SQL)
	}
	if len(r.Actions) != 1 || r.Actions[0]["sns"]["targetArn"] == nil || r.Actions[0]["sns"]["roleArn"] == nil {
		t.Fatalf("actions %v", r.Actions)
	}
}

func TestRulesRolePolicies(t *testing.T) {
	var p policyDoc
	readJSON(t, "rules-role-policy.json", &p)
	noWildcards(t, "rules-role-policy.json", p)
	var trust struct {
		Version   string
		Statement []struct {
			Effect    string
			Principal map[string]string
			Action    string
			Condition map[string]map[string]string
		}
	}
	readJSON(t, "rules-role-trust.json", &trust)
	if len(trust.Statement) != 1 || trust.Statement[0].Principal["Service"] != "iot.amazonaws.com" ||
		trust.Statement[0].Action != "sts:AssumeRole" {
		t.Fatalf("trust %+v", trust)
	}
}
