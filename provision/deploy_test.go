package provision

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// The AWS files docs/aws.md's Fleet section installs: the claim policy
// and the renewal policy grant exactly the requests this package makes,
// and the template makes the thing the kit expects.

const (
	deployDir = "../deploy/aws"
	arnPrefix = "arn:aws:iot:REGION:ACCOUNT_ID:"
	template  = "kitd-fleet"
)

type policy struct {
	Version   string
	Statement []struct {
		Sid      string
		Effect   string
		Action   json.RawMessage
		Resource json.RawMessage
	}
}

func list(t *testing.T, raw json.RawMessage) []string {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		t.Fatal(err)
	}
	return many
}

func grants(t *testing.T, name string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployDir, name))
	if err != nil {
		t.Fatal(err)
	}
	var p policy
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if p.Version != "2012-10-17" {
		t.Errorf("%s: version %q", name, p.Version)
	}
	out := map[string]bool{}
	for _, st := range p.Statement {
		if st.Effect != "Allow" {
			t.Errorf("%s: %s: effect %s", name, st.Sid, st.Effect)
		}
		for _, a := range list(t, st.Action) {
			if strings.Contains(a, "*") {
				t.Errorf("%s: wildcard action %s", name, a)
			}
			for _, r := range list(t, st.Resource) {
				out[a+" "+r] = true
			}
		}
	}
	return out
}

// provisioningGrants is what Onboard and Renew use, from the code.
func provisioningGrants() []string {
	var out []string
	for _, topic := range []string{topicCreate, topicProvision(template)} {
		out = append(out, "iot:Publish "+arnPrefix+"topic/"+topic)
		for _, r := range []string{"/accepted", "/rejected"} {
			out = append(out, "iot:Subscribe "+arnPrefix+"topicfilter/"+topic+r, "iot:Receive "+arnPrefix+"topic/"+topic+r)
		}
	}
	return out
}

func TestClaimPolicyAllowsOnlyProvisioning(t *testing.T) {
	g := grants(t, "claim-policy.json")
	want := append(provisioningGrants(), "iot:Connect "+arnPrefix+"client/claim-*")
	for _, w := range want {
		if !g[w] {
			t.Errorf("claim policy lacks %s", w)
		}
		delete(g, w)
	}
	for x := range g {
		t.Errorf("claim policy grants more than provisioning: %s", x)
	}
	if id := ClaimClientID(fixedSources("abc")); !strings.HasPrefix(id, "claim-") {
		t.Errorf("claim client id %q is not under client/claim-*", id)
	}
}

func TestRenewalPolicyAllowsOnlyTheTwoRequests(t *testing.T) {
	g := grants(t, "renewal-policy.json")
	for _, w := range provisioningGrants() {
		if !g[w] {
			t.Errorf("renewal policy lacks %s", w)
		}
		delete(g, w)
	}
	for x := range g {
		t.Errorf("renewal policy grants more than renewal: %s", x)
	}
}

func TestProvisioningTemplate(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(deployDir, "provisioning-template.json"))
	if err != nil {
		t.Fatal(err)
	}
	var tpl struct {
		Parameters map[string]struct{ Type string }
		Resources  map[string]struct {
			Type             string
			Properties       map[string]any
			OverrideSettings map[string]string
		}
		DeviceConfiguration map[string]any
	}
	if err := json.Unmarshal(b, &tpl); err != nil {
		t.Fatal(err)
	}
	// The parameter kitd sends by default.
	for k := range DefaultParameters() {
		if tpl.Parameters[k].Type != "String" {
			t.Errorf("template has no String parameter %s", k)
		}
	}
	types := map[string]map[string]any{}
	var policies []string // a template may attach several
	for _, r := range tpl.Resources {
		types[r.Type] = r.Properties
		if r.Type == "AWS::IoT::Policy" {
			name, _ := r.Properties["PolicyName"].(string)
			policies = append(policies, name)
		}
	}
	thing := types["AWS::IoT::Thing"]
	if s, _ := json.Marshal(thing["ThingName"]); !strings.Contains(string(s), `"Ref":"SerialNumber"`) {
		t.Errorf("thing name is not made from the serial: %s", s)
	}
	if g, _ := json.Marshal(thing["ThingGroups"]); !strings.Contains(string(g), template) {
		t.Errorf("thing is not put in the %s group: %s", template, g)
	}
	if c := types["AWS::IoT::Certificate"]; c["Status"] != "ACTIVE" {
		t.Errorf("certificate not activated: %v", c)
	}
	// The kit's certificate gets the two policies every kit needs
	// (docs/aws.md step 3 attaches the same by hand); the jobs and
	// renewal policies reach the kit through the kitd-fleet group,
	// which AWS lets hold two policies.
	sort.Strings(policies)
	if want := []string{"kitd-kit", "kitd-kit-shadow"}; strings.Join(policies, " ") != strings.Join(want, " ") {
		t.Errorf("the template attaches %q, want %q (policy.json and shadow-policy.json)", policies, want)
	}
}
