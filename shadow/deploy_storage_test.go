package shadow

import (
	"strings"
	"testing"

	"github.com/kitd-dev/kitd/publisher"
)

// The storage recipe: the rule's SELECT makes both tables' keys, each
// action writes a table deploy/aws defines, and the rules role may write
// exactly those tables.
func TestStorageRuleMatchesTables(t *testing.T) {
	var r topicRule
	readJSON(t, "storage-rule.json", &r)
	filter := strings.ReplaceAll(defaultTelemetryTopic, "{device}", "+")
	for _, want := range []string{
		"FROM '" + filter + "'",
		"device AS kit",
		"concat(epoch, '#', cast(seq + 1000000000000000 AS String)) AS reading",
		// One item per message: only the one-reading form, and only
		// readings (gap records have no values and no sensor).
		"WHERE isUndefined(readings) AND NOT isUndefined(values)",
	} {
		if !strings.Contains(r.SQL, want) {
			t.Errorf("sql %q lacks %q", r.SQL, want)
		}
	}
	type table struct {
		TableName            string
		AttributeDefinitions []struct{ AttributeName, AttributeType string }
		KeySchema            []struct{ AttributeName, KeyType string }
		BillingMode          string
	}
	keys := map[string][]string{}
	for _, f := range []string{"readings-table.json", "latest-table.json"} {
		var tb table
		readJSON(t, f, &tb)
		for _, k := range tb.KeySchema {
			keys[tb.TableName] = append(keys[tb.TableName], k.AttributeName)
		}
	}
	if strings.Join(keys["kitd-readings"], ",") != "kit,reading" || strings.Join(keys["kitd-latest"], ",") != "kit,sensor" {
		t.Fatalf("table keys %v", keys)
	}
	var tables []string
	for _, a := range r.Actions {
		d := a["dynamoDBv2"]
		put, _ := d["putItem"].(map[string]any)
		if d == nil || d["roleArn"] != rulesRole || put == nil {
			t.Fatalf("action %v is not a dynamoDBv2 putItem with the rules role", a)
		}
		name, _ := put["tableName"].(string)
		if _, ok := keys[name]; !ok {
			t.Errorf("action writes table %q, which deploy/aws does not define", name)
		}
		tables = append(tables, name)
	}
	var p policyDoc
	readJSON(t, "storage-role-policy.json", &p)
	noWildcards(t, "storage-role-policy.json", p)
	if len(p.Statement) != 1 || strings.Join(p.Statement[0].Action, ",") != "dynamodb:PutItem" {
		t.Fatalf("storage role policy %+v, want dynamodb:PutItem only", p)
	}
	var granted []string
	for _, res := range p.Statement[0].Resource {
		granted = append(granted, strings.TrimPrefix(res, "arn:aws:dynamodb:REGION:ACCOUNT_ID:table/"))
	}
	if strings.Join(granted, ",") != strings.Join(tables, ",") {
		t.Errorf("the role may write %v, the rule writes %v", granted, tables)
	}
}

// The Basic Ingest policy grants publishing to exactly the topic kitd is
// told to use in docs/aws.md, and kitd accepts that topic.
func TestBasicIngestPolicy(t *testing.T) {
	var p policyDoc
	readJSON(t, "basic-ingest-policy.json", &p)
	noWildcards(t, "basic-ingest-policy.json", p)
	if len(p.Statement) != 1 || len(p.Statement[0].Resource) != 1 || strings.Join(p.Statement[0].Action, ",") != "iot:Publish" {
		t.Fatalf("policy %+v, want one iot:Publish on one topic", p)
	}
	topic, ok := strings.CutPrefix(p.Statement[0].Resource[0], arnPrefix+"topic/")
	if !ok {
		t.Fatalf("resource %q is not a topic", p.Statement[0].Resource[0])
	}
	if topic != "$aws/rules/"+ruleFiles["storage-rule.json"]+"/kits/"+thingVar+"/telemetry" {
		t.Fatalf("topic %q, want the storage rule's Basic Ingest topic", topic)
	}
	cfg := publisher.DefaultConfig()
	cfg.Broker = "tcp://127.0.0.1:1"
	cfg.TelemetryTopic = strings.ReplaceAll(topic, thingVar, "{device}")
	if err := cfg.ValidateSettings(); err != nil {
		t.Fatalf("kitd refuses the topic the policy grants: %v", err)
	}
}
