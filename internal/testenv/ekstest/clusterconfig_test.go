package ekstest

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/testenv/moto"
)

func TestMain(m *testing.M) { moto.Main(m) }

var ctx = context.Background()

// clients starts the double in front of a reset moto and returns an EKS
// client pointed at it and a CloudWatch Logs client pointed at moto.
func clients(t *testing.T, opts Options) (*Server, *eks.Client, *cloudwatchlogs.Client) {
	t.Helper()
	m := moto.Require(t)
	if err := m.Reset(); err != nil {
		t.Fatal(err)
	}
	s := Start(t, m.URL, opts)
	cfg, err := m.AWSConfig(ctx, "us-west-2")
	if err != nil {
		t.Fatal(err)
	}
	e := eks.NewFromConfig(cfg, func(o *eks.Options) { o.BaseEndpoint = aws.String(s.URL) })
	return s, e, cloudwatchlogs.NewFromConfig(cfg)
}

func newCluster(t *testing.T, e *eks.Client, in *eks.CreateClusterInput) *ekstypes.Cluster {
	t.Helper()
	if in == nil {
		in = &eks.CreateClusterInput{}
	}
	in.Name, in.Version = aws.String("c1"), aws.String("1.34")
	in.RoleArn = aws.String("arn:aws:iam::123456789012:role/r")
	if in.ResourcesVpcConfig == nil {
		in.ResourcesVpcConfig = &ekstypes.VpcConfigRequest{}
	}
	in.ResourcesVpcConfig.SubnetIds = []string{"subnet-1", "subnet-2"}
	out, err := e.CreateCluster(ctx, in)
	if err != nil {
		t.Fatalf("CreateCluster: %v", err)
	}
	return out.Cluster
}

func describeC(t *testing.T, e *eks.Client) *ekstypes.Cluster {
	t.Helper()
	out, err := e.DescribeCluster(ctx, &eks.DescribeClusterInput{Name: aws.String("c1")})
	if err != nil {
		t.Fatalf("DescribeCluster: %v", err)
	}
	return out.Cluster
}

func enabled(c *ekstypes.Cluster) string {
	var on []string
	for _, s := range c.Logging.ClusterLogging {
		if aws.ToBool(s.Enabled) {
			for _, t := range s.Types {
				on = append(on, string(t))
			}
		}
	}
	return strings.Join(on, ",")
}

func logSetup(on bool, types ...ekstypes.LogType) *ekstypes.Logging {
	return &ekstypes.Logging{ClusterLogging: []ekstypes.LogSetup{{Types: types, Enabled: aws.Bool(on)}}}
}

func TestDescriptionsCarryEKSDefaultsAndWhatCreateSet(t *testing.T) {
	_, e, logs := clients(t, Options{})
	key := "arn:aws:kms:us-west-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	newCluster(t, e, &eks.CreateClusterInput{
		ResourcesVpcConfig: &ekstypes.VpcConfigRequest{EndpointPrivateAccess: aws.Bool(true), EndpointPublicAccess: aws.Bool(true), PublicAccessCidrs: []string{"203.0.113.0/24"}},
		Logging:            logSetup(true, "api", "audit"),
		EncryptionConfig:   []ekstypes.EncryptionConfig{{Resources: []string{"secrets"}, Provider: &ekstypes.Provider{KeyArn: aws.String(key)}}},
	})
	c := describeC(t, e)
	vc := c.ResourcesVpcConfig
	if !vc.EndpointPrivateAccess || !vc.EndpointPublicAccess || strings.Join(vc.PublicAccessCidrs, ",") != "203.0.113.0/24" || len(vc.SubnetIds) != 2 {
		t.Errorf("vpc config %+v", vc)
	}
	if enabled(c) != "api,audit" || len(c.Logging.ClusterLogging) != 2 || aws.ToBool(c.Logging.ClusterLogging[1].Enabled) {
		t.Errorf("logging %+v: want api,audit enabled and the rest listed as disabled", c.Logging.ClusterLogging)
	}
	if len(c.EncryptionConfig) != 1 || aws.ToString(c.EncryptionConfig[0].Provider.KeyArn) != key {
		t.Errorf("encryption %+v", c.EncryptionConfig)
	}
	groups, err := logs.DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String(LogGroupName("c1"))})
	if err != nil || len(groups.LogGroups) != 1 {
		t.Errorf("log group after a create with logging: %v, %v", groups, err)
	}

	// A cluster created without endpoint settings gets EKS's defaults.
	_, e2, _ := clients(t, Options{})
	newCluster(t, e2, nil)
	vc = describeC(t, e2).ResourcesVpcConfig
	if !vc.EndpointPublicAccess || vc.EndpointPrivateAccess || strings.Join(vc.PublicAccessCidrs, ",") != "0.0.0.0/0" {
		t.Errorf("default vpc config %+v, want public only from 0.0.0.0/0", vc)
	}
}

func TestUpdateClusterConfigRunsAsAnUpdate(t *testing.T) {
	s, e, logs := clients(t, Options{UpdatePolls: 2})
	newCluster(t, e, nil)
	out, err := e.UpdateClusterConfig(ctx, &eks.UpdateClusterConfigInput{Name: aws.String("c1"), Logging: logSetup(true, "api", "scheduler")})
	if err != nil {
		t.Fatalf("UpdateClusterConfig: %v", err)
	}
	u := out.Update
	if u.Status != ekstypes.UpdateStatusInProgress || u.Type != ekstypes.UpdateTypeLoggingUpdate || len(u.Params) != 1 || u.Params[0].Type != ekstypes.UpdateParamTypeClusterLogging {
		t.Fatalf("update %+v", u)
	}
	// While it runs: the cluster is UPDATING, unchanged, and another update is refused.
	if c := describeC(t, e); c.Status != ekstypes.ClusterStatusUpdating || enabled(c) != "" {
		t.Errorf("during the update: status %s, logging %q", c.Status, enabled(c))
	}
	_, err = e.UpdateClusterConfig(ctx, &eks.UpdateClusterConfigInput{Name: aws.String("c1"),
		ResourcesVpcConfig: &ekstypes.VpcConfigRequest{EndpointPrivateAccess: aws.Bool(true)}})
	if awsx.ErrorCode(err) != "ResourceInUseException" || !strings.Contains(err.Error(), "currently has update "+aws.ToString(u.Id)+" in progress") {
		t.Errorf("second update during the first: %v", err)
	}
	var status ekstypes.UpdateStatus
	for i := 0; i < 3 && status != ekstypes.UpdateStatusSuccessful; i++ {
		d, err := e.DescribeUpdate(ctx, &eks.DescribeUpdateInput{Name: aws.String("c1"), UpdateId: u.Id})
		if err != nil {
			t.Fatal(err)
		}
		status = d.Update.Status
	}
	if status != ekstypes.UpdateStatusSuccessful {
		t.Fatalf("update still %s", status)
	}
	if c := describeC(t, e); c.Status != ekstypes.ClusterStatusActive || enabled(c) != "api,scheduler" {
		t.Errorf("after the update: status %s, logging %q", c.Status, enabled(c))
	}
	if groups, err := logs.DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String(LogGroupName("c1"))}); err != nil || len(groups.LogGroups) != 1 {
		t.Errorf("log group after logging was enabled: %v, %v", groups, err)
	}
	if ids, err := e.ListUpdates(ctx, &eks.ListUpdatesInput{Name: aws.String("c1")}); err != nil || len(ids.UpdateIds) != 1 {
		t.Errorf("ListUpdates: %v, %v", ids, err)
	}
	if f := s.Faults(); len(f) != 0 {
		t.Errorf("double faults: %v", f)
	}
}

func TestUpdateClusterConfigRefusesAsEKSDoes(t *testing.T) {
	tests := []struct {
		name, code, msg string
		in              eks.UpdateClusterConfigInput
	}{
		{"nothing changes", "InvalidParameterException", "Cluster is already at the desired configuration with endpointPrivateAccess: false , endpointPublicAccess: true, and Public Endpoint Restrictions: [0.0.0.0/0]",
			eks.UpdateClusterConfigInput{ResourcesVpcConfig: &ekstypes.VpcConfigRequest{EndpointPublicAccess: aws.Bool(true)}}},
		{"logging as it is", "InvalidParameterException", "No changes needed for the logging config provided",
			eks.UpdateClusterConfigInput{Logging: logSetup(false, "api")}},
		{"two kinds at once", "InvalidParameterException", "Only one type of update can be allowed.",
			eks.UpdateClusterConfigInput{Logging: logSetup(true, "api"), ResourcesVpcConfig: &ekstypes.VpcConfigRequest{EndpointPrivateAccess: aws.Bool(true)}}},
		{"no access at all", "InvalidParameterException", "either public or private access",
			eks.UpdateClusterConfigInput{ResourcesVpcConfig: &ekstypes.VpcConfigRequest{EndpointPublicAccess: aws.Bool(false)}}},
		{"not a CIDR", "InvalidParameterException", "The following CIDRs are invalid in publicAccessCidrs: [10.0.0.1]",
			eks.UpdateClusterConfigInput{ResourcesVpcConfig: &ekstypes.VpcConfigRequest{PublicAccessCidrs: []string{"10.0.0.1"}}}},
	}
	_, e, _ := clients(t, Options{})
	newCluster(t, e, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			in.Name = aws.String("c1")
			_, err := e.UpdateClusterConfig(ctx, &in)
			if awsx.ErrorCode(err) != tc.code || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("got %v, want %s %q", err, tc.code, tc.msg)
			}
		})
	}
	_, err := e.UpdateClusterConfig(ctx, &eks.UpdateClusterConfigInput{Name: aws.String("nope"), Logging: logSetup(true, "api")})
	if !awsx.IsNotFound(err) {
		t.Errorf("unknown cluster: %v", err)
	}
}

func TestAssociateEncryptionConfigOnceAndNeverAgain(t *testing.T) {
	_, e, _ := clients(t, Options{})
	newCluster(t, e, nil)
	key := "arn:aws:kms:us-west-2:123456789012:key/k1"
	assoc := func(key string) (*eks.AssociateEncryptionConfigOutput, error) {
		return e.AssociateEncryptionConfig(ctx, &eks.AssociateEncryptionConfigInput{ClusterName: aws.String("c1"),
			EncryptionConfig: []ekstypes.EncryptionConfig{{Resources: []string{"secrets"}, Provider: &ekstypes.Provider{KeyArn: aws.String(key)}}}})
	}
	out, err := assoc(key)
	if err != nil || out.Update.Type != ekstypes.UpdateTypeAssociateEncryptionConfig || out.Update.Status != ekstypes.UpdateStatusInProgress {
		t.Fatalf("AssociateEncryptionConfig: %+v, %v", out, err)
	}
	if d, err := e.DescribeUpdate(ctx, &eks.DescribeUpdateInput{Name: aws.String("c1"), UpdateId: out.Update.Id}); err != nil || d.Update.Status != ekstypes.UpdateStatusSuccessful {
		t.Fatalf("DescribeUpdate: %+v, %v", d, err)
	}
	c := describeC(t, e)
	if len(c.EncryptionConfig) != 1 || aws.ToString(c.EncryptionConfig[0].Provider.KeyArn) != key || c.EncryptionConfig[0].Resources[0] != "secrets" {
		t.Errorf("encryption after association %+v", c.EncryptionConfig)
	}
	for _, again := range []string{key, "arn:aws:kms:us-west-2:123456789012:key/k2"} {
		if _, err := assoc(again); awsx.ErrorCode(err) != "InvalidParameterException" || !strings.Contains(err.Error(), "Encryption is already enabled on the cluster") {
			t.Errorf("second association with %s: %v", again, err)
		}
	}
	if _, err := e.DescribeUpdate(ctx, &eks.DescribeUpdateInput{Name: aws.String("c1"), UpdateId: aws.String("nope")}); !awsx.IsNotFound(err) {
		t.Errorf("unknown update: %v", err)
	}
}

func TestAddonConfigurationSchemaAndValues(t *testing.T) {
	_, e, _ := clients(t, Options{})
	newCluster(t, e, nil)
	out, err := e.DescribeAddonConfiguration(ctx, &eks.DescribeAddonConfigurationInput{AddonName: aws.String("coredns"), AddonVersion: aws.String("v1.12.3-eksbuild.1")})
	if err != nil || !strings.Contains(aws.ToString(out.ConfigurationSchema), `"replicaCount"`) {
		t.Fatalf("DescribeAddonConfiguration: %v, %v", out, err)
	}
	if _, err := e.DescribeAddonConfiguration(ctx, &eks.DescribeAddonConfigurationInput{AddonName: aws.String("coredns"), AddonVersion: aws.String("v0.0.1")}); !awsx.IsNotFound(err) {
		t.Errorf("unknown version: %v", err)
	}
	tests := []struct {
		name, values, refusal string
	}{
		{"JSON", `{"replicaCount": 3}`, ""},
		{"YAML", "replicaCount: 3\nresources:\n  limits:\n    memory: 170Mi\n", ""},
		{"wrong type", `{"replicaCount": "three"}`, "$.replicaCount: got string, want integer"},
		{"unknown key", `{"replicas": 3}`, "Json schema validation failed with error: [$: additional properties 'replicas' not allowed]"},
		{"not JSON or YAML", "{replicaCount: [", "Json or Yaml parsing failed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _ = e.DeleteAddon(ctx, &eks.DeleteAddonInput{ClusterName: aws.String("c1"), AddonName: aws.String("coredns")})
			_, err := e.CreateAddon(ctx, &eks.CreateAddonInput{ClusterName: aws.String("c1"), AddonName: aws.String("coredns"), ConfigurationValues: aws.String(tc.values)})
			if tc.refusal != "" {
				if awsx.ErrorCode(err) != "InvalidParameterException" || !strings.Contains(err.Error(), tc.refusal) {
					t.Errorf("got %v, want a refusal with %q", err, tc.refusal)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			d, err := e.DescribeAddon(ctx, &eks.DescribeAddonInput{ClusterName: aws.String("c1"), AddonName: aws.String("coredns")})
			if err != nil || aws.ToString(d.Addon.ConfigurationValues) != tc.values {
				t.Errorf("DescribeAddon values %q (%v), want as given", aws.ToString(d.Addon.ConfigurationValues), err)
			}
			_, err = e.UpdateAddon(ctx, &eks.UpdateAddonInput{ClusterName: aws.String("c1"), AddonName: aws.String("coredns"), ConfigurationValues: aws.String(`{"replicaCount": "x"}`)})
			if awsx.ErrorCode(err) != "InvalidParameterException" {
				t.Errorf("UpdateAddon with bad values: %v", err)
			}
		})
	}
}
