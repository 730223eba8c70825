package rds

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	rdstypes "github.com/aws/aws-sdk-go-v2/service/rds/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
	"github.com/coderctl/coderctl/internal/testenv/moto"
	"github.com/coderctl/coderctl/internal/testenv/stagetest"
)

func TestMain(m *testing.M) { moto.Main(m) }

const (
	testCluster  = "coder-prod" // metadata.name of the shipped cluster-config.yaml
	testInstance = "coder-prod-coder-db"
)

// stubStages stand in for the network and eks stages: same stage and step
// names, no work. The test seeds their outputs in the state file instead.
func stubStages() []engine.Stage {
	return []engine.Stage{
		stagetest.Stub(names.StageNetwork, nil, "vpc", "subnets<network/vpc"),
		stagetest.Stub(names.StageEKS, []string{names.StageNetwork}, "cluster<network/subnets"),
	}
}

// world is a stage test's moto with the network and eks outputs seeded.
type world struct {
	*stagetest.Env
	vpc       string
	subnets   []string
	clusterSG string
	// config is set for a deployment other than the shipped file's.
	config *stagetest.ConfigEnv
}

func newWorld(t *testing.T) *world {
	t.Helper()
	return newWorldWith(t, nil)
}

// newWorldWith starts from the given env-file inputs (nil: the defaults).
func newWorldWith(t *testing.T, inputs map[string]string) *world {
	t.Helper()
	w := &world{Env: stagetest.New(t, inputs)}
	w.seed(t)
	return w
}

// newWorlds builds one world per cluster name in one moto, as deployments
// side by side in one account and region: each its own cluster-config.yaml
// (metadata.name), state file, VPC and cluster security group.
func newWorlds(t *testing.T, clusters ...string) []*world {
	t.Helper()
	// Each Env resets moto when it starts: build them all before seeding.
	var ws []*world
	for _, c := range clusters {
		cfg := stagetest.WriteClusterConfig(t, t.TempDir(), "name: "+testCluster, "name: "+c)
		ce := stagetest.NewWithClusterConfig(t, nil, cfg)
		ws = append(ws, &world{Env: ce.Env, config: ce})
	}
	for _, w := range ws {
		w.seed(t)
	}
	return ws
}

// reload rebuilds Deps from the state file, as a new process would.
func (w *world) reload(t *testing.T) {
	t.Helper()
	if w.config != nil {
		w.config.Reload(t)
		return
	}
	w.Reload(t)
}

// secretName is the deployment's master secret.
func (w *world) secretName() string { return names.MasterSecretName(w.Deps.Deployment()) }

// instanceID is the deployment's DB instance identifier.
func (w *world) instanceID() string { return InstanceIdentifier(w.Deps.Deployment()) }

// seed creates the VPC, subnets and cluster security group the network and
// eks stages would, and records their outputs.
func (w *world) seed(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	ec2c := w.Deps.AWS.EC2
	vpc, err := ec2c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	w.vpc = aws.ToString(vpc.Vpc.VpcId)
	for i, az := range []string{"us-west-2a", "us-west-2b", "us-west-2c"} {
		sn, err := ec2c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: aws.String(w.vpc),
			CidrBlock: aws.String(fmt.Sprintf("10.0.%d.0/20", 128+16*i)), AvailabilityZone: aws.String(az)})
		if err != nil {
			t.Fatal(err)
		}
		w.subnets = append(w.subnets, aws.ToString(sn.Subnet.SubnetId))
	}
	sg, err := ec2c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("eks-cluster-sg-" + w.Deps.Deployment()),
		Description: aws.String("stands in for the EKS cluster security group"), VpcId: aws.String(w.vpc)})
	if err != nil {
		t.Fatal(err)
	}
	w.clusterSG = aws.ToString(sg.GroupId)
	if err := w.Deps.Record(map[string]string{names.KeyVPCID: w.vpc, names.KeyPrivateSubnetIDs: strings.Join(w.subnets, ","),
		names.KeyClusterSecurityGroupID: w.clusterSG}); err != nil {
		t.Fatal(err)
	}
	w.Calls.Reset()
}

func (w *world) stages() []engine.Stage {
	return append(stubStages(), New(w.Deps))
}

// run runs the rds stage alone (the stubs count as done).
func (w *world) run(t *testing.T, mode engine.Mode) (*engine.Summary, []engine.Event, error) {
	t.Helper()
	return w.RunOnly(t, w.stages(), mode, Name)
}

func (w *world) apply(t *testing.T) []engine.Event {
	t.Helper()
	_, events, err := w.run(t, engine.ModeApply)
	if err != nil {
		t.Fatalf("apply: %v\n%s", err, stagetest.EventLog(events))
	}
	return events
}

func (w *world) outputs() map[string]string {
	out := map[string]string{}
	for _, k := range []string{names.KeyDBSecurityGroupID, names.KeyRDSEndpoint, names.KeyRDSPort, names.KeyMasterSecretARN, names.KeyDBInstanceID} {
		out[k] = w.Deps.State.Get(k)
	}
	return out
}

func (w *world) instance(t *testing.T) *rdstypes.DBInstance {
	t.Helper()
	out, err := w.Deps.AWS.RDS.DescribeDBInstances(context.Background(), &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String(w.instanceID())})
	if err != nil {
		t.Fatalf("describe instance: %v", err)
	}
	return &out.DBInstances[0]
}

// secret reads the master secret as the secrets stage will.
func (w *world) secret(t *testing.T) MasterSecret {
	t.Helper()
	out, err := w.Deps.AWS.SecretsManager.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(w.secretName())})
	if err != nil {
		t.Fatalf("get secret: %v", err)
	}
	var doc MasterSecret
	if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &doc); err != nil {
		t.Fatalf("secret is not JSON: %v", err)
	}
	return doc
}

// ingress lists the database security group's ingress rules.
func (w *world) ingress(t *testing.T, groupID string) []ec2types.SecurityGroupRule {
	t.Helper()
	out, err := w.Deps.AWS.EC2.DescribeSecurityGroupRules(context.Background(), &ec2.DescribeSecurityGroupRulesInput{
		Filters: []ec2types.Filter{{Name: aws.String("group-id"), Values: []string{groupID}}}})
	if err != nil {
		t.Fatal(err)
	}
	var in []ec2types.SecurityGroupRule
	for _, r := range out.SecurityGroupRules {
		if !aws.ToBool(r.IsEgress) {
			in = append(in, r)
		}
	}
	return in
}

// creates lists the mutating calls that create something.
func creates(mutations []string) []string {
	return slices.DeleteFunc(slices.Clone(mutations), func(op string) bool {
		name := op[strings.LastIndexByte(op, '.')+1:]
		return !strings.HasPrefix(name, "Create") && !strings.HasPrefix(name, "Authorize")
	})
}
