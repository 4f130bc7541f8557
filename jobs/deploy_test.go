package jobs

import (
	"encoding/json"
	"os"
	"path"
	"strings"
	"testing"
)

// deploy/aws/jobs-policy.json is the kit's second policy (policy.json is
// the first): it must grant the topics this client uses, on the
// connecting thing only, and nothing it does not use, within AWS's 2048
// characters.
func TestJobsPolicyGrantsExactlyTheClientsTopics(t *testing.T) {
	const (
		thingVar  = "${iot:Connection.Thing.ThingName}"
		arnPrefix = "arn:aws:iot:REGION:ACCOUNT_ID:"
	)
	b, err := os.ReadFile("../deploy/aws/jobs-policy.json")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(strings.Join(strings.Fields(string(b)), "")); n > 2048 {
		t.Errorf("%d characters without white space: AWS IoT refuses a policy over 2048", n)
	}
	var p struct {
		Version   string
		Statement []struct {
			Sid, Effect string
			Action      string
			Resource    []string
		}
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatal(err)
	}
	grants := map[string][]string{} // action -> resource patterns
	for _, st := range p.Statement {
		if st.Effect != "Allow" || strings.Contains(st.Action, "*") {
			t.Errorf("%s: %s %s", st.Sid, st.Effect, st.Action)
		}
		for _, r := range st.Resource {
			rest, ok := strings.CutPrefix(r, arnPrefix)
			if !ok || !strings.Contains(rest, "/$aws/things/"+thingVar+"/jobs/") {
				t.Errorf("%s: %q is not the connecting thing's jobs topic", st.Sid, r)
			}
			// '*' only ever stands for one level: the job id, or the
			// accepted/rejected of a reply.
			for _, lvl := range strings.Split(rest, "/") {
				if strings.Contains(lvl, "*") && lvl != "*" {
					t.Errorf("%s: %q: a wildcard inside a level", st.Sid, r)
				}
			}
			grants[st.Action] = append(grants[st.Action], r)
		}
	}
	tp := newTopics(thingVar)
	const job = "job-1"
	used := map[string][]string{
		"iot:Publish": {tp.getNext(), tp.startNext(), tp.get(job), tp.update(job)},
	}
	for _, f := range append(tp.fixed(), tp.perJob(job)...) {
		used["iot:Subscribe"] = append(used["iot:Subscribe"], "topicfilter/"+f)
		used["iot:Receive"] = append(used["iot:Receive"], "topic/"+f)
	}
	for i, s := range used["iot:Publish"] {
		used["iot:Publish"][i] = "topic/" + s
	}
	matched := map[string]bool{}
	for action, names := range used {
		for _, n := range names {
			ok := false
			for _, g := range grants[action] {
				// IoT policy wildcards match like a shell glob here: '*'
				// never has to cross a '/', as the checks above keep it
				// to one level.
				if m, _ := path.Match(strings.TrimPrefix(g, arnPrefix), n); m {
					ok, matched[action+" "+g] = true, true
				}
			}
			if !ok {
				t.Errorf("the policy lacks %s on %s", action, n)
			}
		}
	}
	for action, gs := range grants {
		for _, g := range gs {
			if !matched[action+" "+g] {
				t.Errorf("the policy grants %s on %s, which the client never uses", action, g)
			}
		}
	}
}
