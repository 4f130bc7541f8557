package shadow

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
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
	defaultAlertTopic     = "kits/{device}/alerts"
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
			// "*", "arn:aws:iot:R:A:*" or "arn:aws:iot:R:A:topic/*": every
			// resource of a service or a type. A name with a wildcard
			// inside one named thing (kit-*, log-group:x:*) is scoped.
			f := strings.SplitN(r, ":", 6)
			if r == "*" || len(f) < 6 || f[5] == "*" || strings.HasSuffix(f[5], "/*") && !strings.Contains(strings.TrimSuffix(f[5], "/*"), "/") {
				t.Errorf("%s: %s: wildcard resource %q", name, st.Sid, r)
			}
		}
	}
}

// kitPolicies are the policies every kit's certificate carries
// (docs/aws.md step 3; the fleet template attaches the same two): one
// document could not hold them within AWS's 2048 characters.
var kitPolicies = []string{"policy.json", "shadow-policy.json"}

func TestDevicePolicyLeastPrivilege(t *testing.T) {
	grants := map[string]string{} // action + " " + resource -> file
	var stmts []policyDoc
	for _, name := range kitPolicies {
		var p policyDoc
		readJSON(t, name, &p)
		noWildcards(t, name, p)
		stmts = append(stmts, p)
		// A kit's policy names its own topics only: no wildcard anywhere.
		for _, st := range p.Statement {
			for _, r := range st.Resource {
				if strings.ContainsAny(r, "*+#") {
					t.Errorf("%s: %s: wildcard in %q", name, st.Sid, r)
				}
				if !strings.HasPrefix(r, arnPrefix) || !strings.Contains(r, thingVar) {
					t.Errorf("%s: %s: %q is not scoped to the connecting thing", name, st.Sid, r)
				}
				for _, a := range st.Action {
					if other, ok := grants[a+" "+r]; ok {
						t.Errorf("%s and %s both grant %s on %s", other, name, a, r)
					}
					grants[a+" "+r] = name
				}
			}
		}
	}

	need := func(action, kind, name string) {
		t.Helper()
		r := arnPrefix + kind + "/" + name
		if _, ok := grants[action+" "+r]; !ok {
			t.Errorf("the kit's policies lack %s on %s", action, r)
		}
		delete(grants, action+" "+r)
	}
	dev := func(topic string) string { return strings.ReplaceAll(topic, "{device}", thingVar) }
	tp := newTopics(thingVar, "")

	need("iot:Connect", "client", thingVar)
	need("iot:Publish", "topic", dev(defaultTelemetryTopic))
	need("iot:Publish", "topic", dev(defaultStatusTopic))
	need("iot:Publish", "topic", dev(defaultAlertTopic))
	need("iot:RetainPublish", "topic", dev(defaultStatusTopic))
	need("iot:Publish", "topic", tp.get())
	need("iot:Publish", "topic", tp.update())
	for _, r := range tp.responses() {
		need("iot:Subscribe", "topicfilter", r)
		need("iot:Receive", "topic", r)
	}
	for g, name := range grants {
		t.Errorf("%s grants more than the agent uses: %s", name, g)
	}

	for _, p := range stmts {
		for _, st := range p.Statement {
			for _, a := range st.Action {
				if a == "iot:Connect" && st.Condition["Bool"]["iot:Connection.Thing.IsAttached"] != "true" {
					t.Errorf("connect is not limited to a certificate attached to the thing: %v", st.Condition)
				}
			}
		}
	}
}

// devicePolicies are the AWS IoT policies in deploy/aws, by the name
// docs/aws.md creates each under. The *-role-policy.json files are IAM
// role policies, which IAM limits differently.
var devicePolicies = map[string]string{
	"policy.json":              "kitd-kit",
	"shadow-policy.json":       "kitd-kit-shadow",
	"jobs-policy.json":         "kitd-kit-jobs",
	"basic-ingest-policy.json": "kitd-basic-ingest",
	"claim-policy.json":        "kitd-claim",
	"renewal-policy.json":      "kitd-renewal",
}

// policyChars is the size AWS IoT limits: the document without white
// space (the same count as jobs' deploy test).
func policyChars(b []byte) int { return len(strings.Join(strings.Fields(string(b)), "")) }

// AWS IoT refuses a policy document over 2048 characters (white space
// not counted): aws iot create-policy in docs/aws.md would fail.
func TestDevicePoliciesFitAWSLimit(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(deployDir, "*policy*.json"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../docs/aws.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		name := filepath.Base(f)
		if strings.Contains(name, "-role-") {
			continue
		}
		n++
		policy, ok := devicePolicies[name]
		if !ok {
			t.Errorf("%s: not in devicePolicies (name the policy docs/aws.md creates from it)", name)
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if c := policyChars(b); c > 2048 {
			t.Errorf("%s: %d characters without white space: AWS IoT refuses a policy over 2048", name, c)
		}
		if !strings.Contains(string(doc), "--policy-name "+policy+" --policy-document file://"+name) {
			t.Errorf("docs/aws.md does not create %s from %s", policy, name)
		}
	}
	if n != len(devicePolicies) {
		t.Errorf("%d device policy files in %s, want %d", n, deployDir, len(devicePolicies))
	}
}

type topicRule struct {
	Description      string
	SQL              string `json:"sql"`
	AwsIotSqlVersion string
	RuleDisabled     bool
	Actions          []map[string]map[string]any
	ErrorAction      map[string]map[string]any
}

const (
	rulesRole     = "arn:aws:iam::ACCOUNT_ID:role/kitd-iot-rules"
	ruleErrorLogs = "kitd-iot-rule-errors"
	// kitPrefix is how docs/aws.md names things (kit-001); the rules role
	// reaches those shadows only.
	kitPrefix = "kit-"
)

// The shadow's connected comes from AWS IoT's lifecycle events, not from
// the kit's status messages: a late Will of an earlier connection (after
// a takeover) arrives after the new connection's connected:true, and
// lifecycle events may come out of order too. The rule drops both, and
// writes reported.connected and nothing else.
func TestStatusRuleWritesOnlyConnectedInOrder(t *testing.T) {
	var r topicRule
	readJSON(t, "status-rule.json", &r)
	want := "SELECT {'reported': {'connected': eventType = 'connected'}} AS state" +
		// Every client's connect and disconnect events...
		" FROM '$aws/events/presence/+/+'" +
		// ...of kits only (the role could not update other shadows),
		" WHERE startswith(clientId, '" + kitPrefix + "')" +
		// not the disconnect of a connection a newer one replaced,
		" AND CASE eventType WHEN 'connected' THEN true WHEN 'disconnected' THEN disconnectReason <> 'DUPLICATE_CLIENTID' ELSE false END" +
		// and none older than the shadow's last write of connected
		// (event timestamps are ms, shadow metadata seconds).
		" AND timestamp > 1000 * get_thing_shadow(clientId, '" + rulesRole + "').metadata.reported.connected.timestamp"
	if r.SQL != want {
		t.Fatalf("sql\n%s\nwant\n%s", r.SQL, want)
	}
	// Only reported.connected: the SELECT builds the one object itself and
	// copies nothing of the event.
	if strings.Count(r.SQL, "SELECT") != 1 || strings.Contains(r.SQL, "SELECT *") || strings.Contains(r.SQL, "SELECT state") {
		t.Fatalf("the rule must write only reported.connected: %s", r.SQL)
	}
	if len(r.Actions) != 1 || r.Actions[0]["republish"] == nil {
		t.Fatalf("actions %v", r.Actions)
	}
	rp := r.Actions[0]["republish"]
	// The thing name is the client id (DESIGN.md: device.id is both);
	// $$ escapes a reserved topic.
	if rp["topic"] != "$$aws/things/${clientId}/shadow/update" {
		t.Fatalf("republish topic %v", rp["topic"])
	}
	if rp["qos"] != float64(1) || rp["roleArn"] != rulesRole || r.RuleDisabled || r.AwsIotSqlVersion != "2016-03-23" {
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
	if len(r.Actions) != 1 || r.Actions[0]["sns"]["targetArn"] != alertTopic || r.Actions[0]["sns"]["roleArn"] != rulesRole {
		t.Fatalf("actions %v", r.Actions)
	}
}

const alertTopic = "arn:aws:sns:REGION:ACCOUNT_ID:kitd-moisture-alerts"

// The edge alerts' rule: every message on the alert topics, firing or
// resolved, becomes one SNS notification whose text (SNS's "default",
// hence messageFormat JSON) names the kit, the rule, the state and the
// value; nothing else goes to SNS.
func TestAlertSNSRule(t *testing.T) {
	var r topicRule
	readJSON(t, "alert-sns-rule.json", &r)
	filter := strings.ReplaceAll(defaultAlertTopic, "{device}", "+")
	if !strings.HasSuffix(r.SQL, " AS default FROM '"+filter+"'") || !strings.HasPrefix(r.SQL, "SELECT concat(") {
		t.Fatalf("sql %q", r.SQL)
	}
	for _, f := range []string{"device", "alert", "state", "sensor", "quantity", "cast(value AS String)", "cast(threshold AS String)", "ts"} {
		if !strings.Contains(r.SQL, f) {
			t.Errorf("the notification text lacks %s", f)
		}
	}
	sns := r.Actions[0]["sns"]
	if len(r.Actions) != 1 || sns["targetArn"] != edgeAlertTopic || sns["roleArn"] != rulesRole || sns["messageFormat"] != "JSON" ||
		r.RuleDisabled || r.AwsIotSqlVersion != "2016-03-23" {
		t.Fatalf("rule %+v", r)
	}
}

const edgeAlertTopic = "arn:aws:sns:REGION:ACCOUNT_ID:kitd-alerts"

// ruleFiles are the topic rules shipped, by the name docs/aws.md gives
// them: the trust policy names each.
var ruleFiles = map[string]string{
	"status-rule.json":         "kitd_status_to_shadow",
	"moisture-alert-rule.json": "kitd_moisture_alert",
	"alert-sns-rule.json":      "kitd_alert_to_sns",
	"storage-rule.json":        "kitd_store_readings",
}

// A rule whose action fails (throttled, role missing a grant) says so
// only through its errorAction; without one the failure is silent.
func TestEveryRuleHasAnErrorAction(t *testing.T) {
	ents, err := os.ReadDir(deployDir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), "-rule.json") {
			continue
		}
		n++
		if _, ok := ruleFiles[e.Name()]; !ok {
			t.Errorf("%s: not in ruleFiles (the trust policy must name its rule)", e.Name())
		}
		var r topicRule
		readJSON(t, e.Name(), &r)
		cw := r.ErrorAction["cloudwatchLogs"]
		if len(r.ErrorAction) != 1 || cw["logGroupName"] != ruleErrorLogs || cw["roleArn"] != rulesRole {
			t.Errorf("%s: errorAction %v, want cloudwatchLogs to %s with %s", e.Name(), r.ErrorAction, ruleErrorLogs, rulesRole)
		}
	}
	if n != len(ruleFiles) {
		t.Errorf("%d rule files, want %d", n, len(ruleFiles))
	}
	doc, err := os.ReadFile("../docs/aws.md")
	if err != nil {
		t.Fatal(err)
	}
	for file, name := range ruleFiles {
		if !strings.Contains(string(doc), "--rule-name "+name+" --topic-rule-payload file://"+file) {
			t.Errorf("docs/aws.md does not create %s from %s", name, file)
		}
	}
	if !strings.Contains(string(doc), "aws logs create-log-group --log-group-name "+ruleErrorLogs) {
		t.Errorf("docs/aws.md does not create the %s log group", ruleErrorLogs)
	}
}

// The rules' role can update and read kit shadows, publish the alert and
// log rule errors: nothing else, and only for these rules of this account.
func TestRulesRolePolicies(t *testing.T) {
	var p policyDoc
	readJSON(t, "rules-role-policy.json", &p)
	noWildcards(t, "rules-role-policy.json", p)
	grants := map[string]bool{}
	for _, st := range p.Statement {
		for _, a := range st.Action {
			for _, r := range st.Resource {
				grants[a+" "+r] = true
			}
		}
	}
	logs := "arn:aws:logs:REGION:ACCOUNT_ID:log-group:" + ruleErrorLogs + ":*"
	for _, g := range []string{
		"iot:Publish arn:aws:iot:REGION:ACCOUNT_ID:topic/$aws/things/" + kitPrefix + "*/shadow/update",
		"iot:GetThingShadow arn:aws:iot:REGION:ACCOUNT_ID:thing/" + kitPrefix + "*",
		"sns:Publish " + alertTopic,
		"sns:Publish " + edgeAlertTopic,
		"logs:CreateLogStream " + logs,
		"logs:DescribeLogStreams " + logs,
		"logs:PutLogEvents " + logs,
	} {
		if !grants[g] {
			t.Errorf("rules role lacks %s", g)
		}
		delete(grants, g)
	}
	for g := range grants {
		t.Errorf("rules role grants more than the rules use: %s", g)
	}

	var trust struct {
		Version   string
		Statement []struct {
			Effect    string
			Principal map[string]string
			Action    string
			Condition map[string]map[string]stringList
		}
	}
	readJSON(t, "rules-role-trust.json", &trust)
	if len(trust.Statement) != 1 || trust.Statement[0].Principal["Service"] != "iot.amazonaws.com" ||
		trust.Statement[0].Action != "sts:AssumeRole" || trust.Statement[0].Effect != "Allow" {
		t.Fatalf("trust %+v", trust)
	}
	// Confused deputy: AWS IoT assumes the role only for these rules of
	// this account, not for anyone's rule that names the role.
	cond := trust.Statement[0].Condition
	if got := cond["StringEquals"]["aws:SourceAccount"]; len(got) != 1 || got[0] != "ACCOUNT_ID" {
		t.Errorf("aws:SourceAccount %q", got)
	}
	var want []string
	for _, name := range ruleFiles {
		want = append(want, "arn:aws:iot:REGION:ACCOUNT_ID:rule/"+name)
	}
	got := append([]string(nil), cond["ArnEquals"]["aws:SourceArn"]...)
	sort.Strings(want)
	sort.Strings(got)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("aws:SourceArn %q, want exactly %q", got, want)
	}
	if len(cond) != 2 {
		t.Errorf("trust conditions %v, want StringEquals and ArnEquals", cond)
	}
}
