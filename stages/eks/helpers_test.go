package eks

import (
	"context"
	"encoding/json"
	"maps"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/deploy"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/names"
	"github.com/coderctl/coderctl/internal/testenv/ekstest"
	"github.com/coderctl/coderctl/internal/testenv/moto"
	"github.com/coderctl/coderctl/internal/testenv/stagetest"
	"github.com/coderctl/coderctl/stages/network"
	"github.com/coderctl/coderctl/stages/prereqs"
)

func TestMain(m *testing.M) { moto.Main(m) }

// cluster is the shipped cluster-config.yaml's metadata.name.
const cluster = "coder-prod"

// newEnv starts moto with the add-on double in front of it and a fresh
// state file.
func newEnv(t *testing.T, opts ekstest.Options) (*stagetest.Env, *ekstest.Server) {
	t.Helper()
	emu := ekstest.Use(t, opts)
	e := stagetest.New(t, nil)
	emu.Wire(e.Deps)
	return e, emu
}

// reload rebuilds Deps from the state file, as a new process would.
func reload(t *testing.T, e *stagetest.Env, emu *ekstest.Server) {
	t.Helper()
	e.Reload(t)
	emu.Wire(e.Deps)
}

func graph(d *deploy.Deps) []engine.Stage {
	return []engine.Stage{prereqs.New(d), network.New(d), New(d)}
}

// run runs the graph in mode and returns the summary and events; it fails
// the test when the run does not succeed.
func run(t *testing.T, e *stagetest.Env, opts engine.Options) (*engine.Summary, []engine.Event) {
	t.Helper()
	return e.MustRun(t, graph(e.Deps), opts)
}

// applyAll builds the network and the cluster from nothing. prereqs has
// no steps, only checks; TestApplyFromEmpty runs it, the others save the
// time its checks take.
func applyAll(t *testing.T, e *stagetest.Env) (*engine.Summary, []engine.Event) {
	t.Helper()
	return run(t, e, engine.Options{Mode: engine.ModeApply, Only: []string{network.Name, Name}})
}

// checksOf returns the eks checkpoint's checks by name.
func checksOf(sum *engine.Summary) map[string]engine.Check {
	out := map[string]engine.Check{}
	for _, st := range sum.Stages {
		if st.Stage == Name {
			for _, c := range st.Checks {
				out[c.Name] = c
			}
		}
	}
	return out
}

// verifyEKS runs only the eks checkpoint.
func verifyEKS(t *testing.T, e *stagetest.Env) map[string]engine.Check {
	t.Helper()
	out := map[string]engine.Check{}
	for _, c := range New(e.Deps).Verify(context.Background()) {
		out[c.Name] = c
	}
	return out
}

// actionsOf returns the eks plan's actions by resource.
func actionsOf(sum *engine.Summary) map[string]engine.Action {
	out := map[string]engine.Action{}
	for _, st := range sum.Stages {
		if st.Stage == Name {
			for _, a := range st.Actions {
				out[a.Resource] = a
			}
		}
	}
	return out
}

func describe(t *testing.T, e *stagetest.Env) *ekstypes.Cluster {
	t.Helper()
	out, err := e.Deps.AWS.EKS.DescribeCluster(context.Background(), &eks.DescribeClusterInput{Name: aws.String(cluster)})
	if err != nil {
		t.Fatalf("DescribeCluster: %v", err)
	}
	return out.Cluster
}

// outputs are the eks stage's recorded outputs.
func outputs(e *stagetest.Env) map[string]string {
	out := map[string]string{}
	for _, k := range []string{names.KeyClusterRoleARN, names.KeyClusterEndpoint, names.KeyClusterSecurityGroupID, names.KeyOIDCProviderARN, names.KeyEBSCSIRoleARN} {
		out[k] = e.Deps.State.Get(k)
	}
	return out
}

func progressMessages(events []engine.Event, step string) []string {
	var out []string
	for _, ev := range events {
		if ev.Type == engine.EventProgress && ev.Stage == Name && ev.Step == step {
			out = append(out, ev.Message)
		}
	}
	return out
}

// sharedSG finds coderctl's shared control-plane security group by name
// and checks its tags ("" when it does not exist).
func sharedSG(t *testing.T, e *stagetest.Env) string {
	t.Helper()
	out, err := e.Deps.AWS.EC2.DescribeSecurityGroups(context.Background(), &ec2.DescribeSecurityGroupsInput{
		Filters: []ec2types.Filter{{Name: aws.String("group-name"), Values: []string{cluster + "-cluster-shared"}}},
	})
	if err != nil {
		t.Fatalf("DescribeSecurityGroups: %v", err)
	}
	if len(out.SecurityGroups) == 0 {
		return ""
	}
	g := out.SecurityGroups[0]
	if tags := awsx.EC2TagMap(g.Tags); tags["coderctl/deployment"] != cluster || tags["coderctl/stage"] != Name || tags["Name"] != cluster+"-cluster-shared" {
		t.Errorf("shared security group tags %v", tags)
	}
	return aws.ToString(g.GroupId)
}

// assertRole checks that the role exists, tagged, with policy attached and
// a trust policy containing each fragment (compact JSON).
func assertRole(t *testing.T, e *stagetest.Env, name, policy string, trust ...string) {
	t.Helper()
	out, err := e.Deps.AWS.IAM.GetRole(context.Background(), &iam.GetRoleInput{RoleName: aws.String(name)})
	if err != nil {
		t.Fatalf("role %s: %v", name, err)
	}
	if tags := awsx.IAMTags(out.Role.Tags); tags["coderctl/deployment"] != cluster {
		t.Errorf("role %s tags %v", name, tags)
	}
	doc, err := url.QueryUnescape(aws.ToString(out.Role.AssumeRolePolicyDocument))
	if err != nil {
		t.Fatal(err)
	}
	var compact map[string]any
	if err := json.Unmarshal([]byte(doc), &compact); err != nil {
		t.Fatalf("role %s trust policy %q: %v", name, doc, err)
	}
	b, _ := json.Marshal(compact)
	for _, f := range trust {
		if !strings.Contains(string(b), f) {
			t.Errorf("role %s trust policy lacks %s: %s", name, f, b)
		}
	}
	pols, err := e.Deps.AWS.IAM.ListAttachedRolePolicies(context.Background(), &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range pols.AttachedPolicies {
		names = append(names, aws.ToString(p.PolicyName))
	}
	if !slices.Equal(names, []string{policy}) {
		t.Errorf("role %s policies %v, want [%s]", name, names, policy)
	}
}

func mustJSON(t *testing.T, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
}

func mapsEqual(a, b map[string]string) bool { return maps.Equal(a, b) }

func keys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// assertRefusedBeforeAnyChange runs the stage's validation as up does and
// wants bad input whose message holds each of want, with no mutating AWS
// call made on the way.
func assertRefusedBeforeAnyChange(t *testing.T, e *stagetest.Env, want []string) {
	t.Helper()
	e.Calls.Reset()
	g, err := engine.NewGraph(graph(e.Deps))
	if err != nil {
		t.Fatal(err)
	}
	err = g.ValidateAll(ctx, []string{Name}, nil)
	if !fault.IsInput(err) {
		t.Fatalf("got %v, want bad input", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
	if m := e.Calls.Mutations(); len(m) != 0 {
		t.Errorf("validation made mutating calls: %v", m)
	}
}
