package nodegroups_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
	"github.com/coderctl/coderctl/internal/testenv"
	"github.com/coderctl/coderctl/internal/testenv/ekstest"
	"github.com/coderctl/coderctl/internal/testenv/stagetest"
	"github.com/coderctl/coderctl/stages/nodegroups"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// world is one test's deployment: moto with the network and the EKS
// cluster the nodegroups stage builds on, and the stage itself.
type world struct {
	env     *stagetest.Env
	emu     *ekstest.Server // the EKS stand-in in front of moto
	private []string
	public  []string
	creates *createRecorder
}

// newWorld creates what the network and eks stages would have: a VPC with
// three private and three public subnets, recorded in state, and an ACTIVE
// EKS cluster. The eks stage is stood in for by a stub in the graph, so
// these tests do not depend on its progress.
func newWorld(t *testing.T) *world { return newWorldWith(t, "") }

// newWorldWith is newWorld with the cluster configuration at path ("" for
// the shipped one). EKS calls go through the EKS stand-in, which serves
// what moto lacks (UpdateNodegroupVersion, DescribeUpdate) and refuses
// what EKS refuses.
func newWorldWith(t *testing.T, path string) *world {
	t.Helper()
	emu := ekstest.Use(t, ekstest.Options{})
	var env *stagetest.Env
	if path == "" {
		env = stagetest.New(t, nil)
	} else {
		env = stagetest.NewWithClusterConfig(t, nil, path).Env
	}
	ctx := context.Background()
	w := &world{env: env, emu: emu, creates: &createRecorder{}}
	vpc, err := env.Deps.AWS.EC2.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	for i, zone := range []string{"us-west-2a", "us-west-2b", "us-west-2c"} {
		for _, kind := range []string{"private", "public"} {
			offset := map[string]int{"private": 0, "public": 100}[kind]
			sn, err := env.Deps.AWS.EC2.CreateSubnet(ctx, &ec2.CreateSubnetInput{
				VpcId: vpc.Vpc.VpcId, AvailabilityZone: aws.String(zone),
				CidrBlock: aws.String(fmt.Sprintf("10.0.%d.0/24", offset+i)),
			})
			if err != nil {
				t.Fatal(err)
			}
			if kind == "private" {
				w.private = append(w.private, aws.ToString(sn.Subnet.SubnetId))
			} else {
				w.public = append(w.public, aws.ToString(sn.Subnet.SubnetId))
			}
		}
	}
	if err := env.Deps.State.SetMany(map[string]string{
		"VPC_ID":             aws.ToString(vpc.Vpc.VpcId),
		"PRIVATE_SUBNET_IDS": strings.Join(w.private, ","),
		"PUBLIC_SUBNET_IDS":  strings.Join(w.public, ","),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Deps.AWS.EKS.CreateCluster(ctx, &eks.CreateClusterInput{
		Name:               aws.String(env.Deps.Deployment()),
		RoleArn:            aws.String("arn:aws:iam::123456789012:role/" + env.Deps.Deployment() + "-eks-cluster"),
		Version:            aws.String("1.34"),
		ResourcesVpcConfig: &ekstypes.VpcConfigRequest{SubnetIds: w.private},
	}); err != nil {
		t.Fatal(err)
	}
	w.watchCreates()
	env.Calls.Reset()
	return w
}

// watchCreates records every CreateNodegroup input the stage sends, so the
// tests see what went into the call itself (labels and taints at
// creation, the client token).
func (w *world) watchCreates() {
	w.env.Deps.AWS.EKS = eks.NewFromConfig(w.env.Deps.AWS.Config, func(o *eks.Options) {
		o.BaseEndpoint = aws.String(w.emu.URL)
		o.APIOptions = append(o.APIOptions, w.creates.middleware)
	})
}

type createRecorder struct {
	mu     sync.Mutex
	inputs []eks.CreateNodegroupInput
}

func (c *createRecorder) middleware(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("recordCreateNodegroup",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			if p, ok := in.Parameters.(*eks.CreateNodegroupInput); ok {
				c.mu.Lock()
				c.inputs = append(c.inputs, *p)
				c.mu.Unlock()
			}
			return next.HandleInitialize(ctx, in)
		}), middleware.After)
}

func (c *createRecorder) byName() map[string]eks.CreateNodegroupInput {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]eks.CreateNodegroupInput{}
	for _, in := range c.inputs {
		out[aws.ToString(in.NodegroupName)] = in
	}
	return out
}

// stages is the graph the tests run: a stub eks stage with the two steps
// the nodegroups stage names, and the stage under test.
func (w *world) stages() []engine.Stage {
	eksStub := stagetest.Stub(names.StageEKS, nil, "cluster-role", "cluster<eks/cluster-role")
	return []engine.Stage{eksStub, nodegroups.New(w.env.Deps)}
}

// stage is the nodegroups stage over the world's current Deps.
func (w *world) stage() engine.Stage { return nodegroups.New(w.env.Deps) }

// run runs the nodegroups stage alone in mode.
func (w *world) run(t *testing.T, mode engine.Mode) (*engine.Summary, []engine.Event) {
	t.Helper()
	sum, events, err := w.env.RunOnly(t, w.stages(), mode, nodegroups.Name)
	if err != nil {
		t.Fatalf("%s: %v\n%s", mode, err, stagetest.EventLog(events))
	}
	return sum, events
}

// apply runs apply and fails the test unless it succeeded.
func (w *world) apply(t *testing.T) *engine.Summary {
	t.Helper()
	sum, events := w.run(t, engine.ModeApply)
	if !sum.OK {
		t.Fatalf("apply failed: %v\n%s", sum.FailedChecks, stagetest.EventLog(events))
	}
	return sum
}

func (w *world) describe(t *testing.T, group string) *ekstypes.Nodegroup {
	t.Helper()
	out, err := w.env.Deps.AWS.EKS.DescribeNodegroup(context.Background(), &eks.DescribeNodegroupInput{
		ClusterName: aws.String(w.env.Deps.Deployment()), NodegroupName: aws.String(group),
	})
	if err != nil {
		t.Fatalf("describe %s: %v", group, err)
	}
	return out.Nodegroup
}

func (w *world) listGroups(t *testing.T) []string {
	t.Helper()
	out, err := w.env.Deps.AWS.EKS.ListNodegroups(context.Background(), &eks.ListNodegroupsInput{ClusterName: aws.String(w.env.Deps.Deployment())})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out.Nodegroups)
	return out.Nodegroups
}

// checks runs verify and indexes its checks by name.
func (w *world) checks(t *testing.T) map[string]engine.Check {
	t.Helper()
	out := map[string]engine.Check{}
	for _, c := range w.stage().Verify(context.Background()) {
		out[c.Name] = c
	}
	return out
}

// groupWant is what the shipped cluster-config.yaml asks of each group.
type groupWant struct {
	name, instanceType string
	min, max, desired  int32
	disk               int32
	nodeType           string
	tainted            bool
}

var shippedGroups = []groupWant{
	{"system", "t3.medium", 3, 3, 3, 50, "system", false},
	{"coder-coderd", "m7i.xlarge", 2, 2, 2, 50, "coderd", true},
	{"coder-provisioner", "c7i.2xlarge", 1, 6, 2, 50, "provisioner", true},
	{"coder-workspace", "m7i.12xlarge", 2, 20, 2, 100, "workspace", true},
}

func (g groupWant) taints() []ekstypes.Taint {
	if !g.tainted {
		return nil
	}
	return []ekstypes.Taint{{Key: aws.String("coder/node-type"), Value: aws.String(g.nodeType), Effect: ekstypes.TaintEffectNoSchedule}}
}

func taintStrings(ts []ekstypes.Taint) []string {
	var out []string
	for _, t := range ts {
		out = append(out, fmt.Sprintf("%s=%s:%s", aws.ToString(t.Key), aws.ToString(t.Value), t.Effect))
	}
	sort.Strings(out)
	return out
}

// only keeps the mutating calls of one service ("EKS.").
func only(calls []string, prefix string) []string {
	var out []string
	for _, c := range calls {
		if strings.HasPrefix(c, prefix) {
			out = append(out, c)
		}
	}
	return out
}
