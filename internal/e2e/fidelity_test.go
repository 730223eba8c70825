package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/coderctl/coderctl/internal/awsx"
)

// The lifecycle deploys the shipped cluster-config.yaml with the fields a
// platform team changes most (issue 15): the provisioner group on Graviton
// (ARM), the system group in public subnets, Kubernetes secrets encrypted
// with a KMS key, and control-plane logs kept for 30 days.
const (
	fidelityKeyAlias     = "alias/coder-prod-secrets"
	fidelityRetention    = 30
	fidelityARMGroup     = "coder-provisioner"
	fidelityARMType      = "c7g.2xlarge"
	fidelityPublicGroup  = "system"
	fidelityARMAMIType   = "AL2023_ARM_64_STANDARD"
	fidelityLogGroupName = "/aws/eks/coder-prod/cluster"
)

// useFidelityConfig makes the KMS key (by alias, as a platform team names
// it) and edits w's cluster-config.yaml.
func (w *world) useFidelityConfig() {
	w.t.Helper()
	ctx := context.Background()
	cfg, err := w.g.AWSConfig(ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	kc := kms.NewFromConfig(cfg)
	key, err := kc.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("coder-prod Kubernetes secrets")})
	if err != nil {
		w.t.Fatalf("create KMS key: %v", err)
	}
	if _, err := kc.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(fidelityKeyAlias), TargetKeyId: key.KeyMetadata.KeyId}); err != nil {
		w.t.Fatalf("create KMS alias: %v", err)
	}
	path := filepath.Join(w.dir, "cluster-config.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		w.t.Fatal(err)
	}
	text := string(b)
	replace := func(old, new string) {
		if strings.Count(text, old) != 1 {
			w.t.Fatalf("cluster-config.yaml: %q appears %d times, want once", old, strings.Count(text, old))
		}
		text = strings.Replace(text, old, new, 1)
	}
	replace("    instanceType: c7i.2xlarge\n", "    instanceType: "+fidelityARMType+"\n    amiFamily: AmazonLinux2023\n")
	replace("    volumeSize: 50\n    privateNetworking: true\n    labels:\n      coder/node-type: system\n",
		"    volumeSize: 50\n    privateNetworking: false\n    labels:\n      coder/node-type: system\n")
	replace("    enableTypes: [\"api\", \"audit\", \"authenticator\"]\n",
		"    enableTypes: [\"api\", \"audit\", \"authenticator\"]\n    logRetentionInDays: 30\n")
	text += "\nsecretsEncryption:\n  keyARN: arn:aws:kms:us-west-2:123456789012:" + fidelityKeyAlias + "\n"
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		w.t.Fatal(err)
	}
}

// assertConfigFidelity checks, after up and verify, that what the file
// asked for exists as AWS and EKS would have it, reading moto and the
// cluster directly, and that verify checked each of them.
func (w *world) assertConfigFidelity(verifyStdout string) {
	w.t.Helper()
	ctx := context.Background()
	cfg, err := w.g.AWSConfig(ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Run("verify checks what the file asked for", func(t *testing.T) {
		passed := passedChecks(verifyStdout)
		for _, want := range []string{"secrets-encryption", "log-retention", "public-ip-on-launch", "launch-template/" + fidelityARMGroup} {
			if !slices.Contains(passed, want) {
				t.Errorf("verify has no passing check %q (passed: %v)", want, passed)
			}
		}
	})
	w.t.Run("log group kept for the configured days", func(t *testing.T) {
		out, err := cloudwatchlogs.NewFromConfig(cfg).DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String(fidelityLogGroupName)})
		if err != nil || len(out.LogGroups) != 1 {
			t.Fatalf("log group %s: %v, %d found", fidelityLogGroupName, err, len(out.LogGroups))
		}
		if got := aws.ToInt32(out.LogGroups[0].RetentionInDays); got != fidelityRetention {
			t.Errorf("retention %d days, want %d", got, fidelityRetention)
		}
	})
	w.t.Run("ARM group gets the ARM AMI type and arm64 nodes", func(t *testing.T) { w.assertARMGroup(t, ctx, eks.NewFromConfig(cfg)) })
	w.t.Run("public group lands in public subnets that give addresses", func(t *testing.T) {
		w.assertPublicGroup(t, ctx, eks.NewFromConfig(cfg), ec2.NewFromConfig(cfg))
	})
	w.t.Run("every launch template requires IMDSv2", func(t *testing.T) { assertIMDSv2(t, ctx, ec2.NewFromConfig(cfg)) })
}

// passedChecks names the checks a `verify -o json` run passed.
func passedChecks(stdout string) []string {
	var out []string
	for _, line := range strings.Split(stdout, "\n") {
		var ev struct{ Type, Name, Status string }
		if json.Unmarshal([]byte(line), &ev) == nil && ev.Type == "check" && ev.Status == "pass" {
			out = append(out, ev.Name)
		}
	}
	return out
}

func (w *world) assertARMGroup(t *testing.T, ctx context.Context, ec *eks.Client) {
	ng, err := ec.DescribeNodegroup(ctx, &eks.DescribeNodegroupInput{ClusterName: aws.String("coder-prod"), NodegroupName: aws.String(fidelityARMGroup)})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(ng.Nodegroup.AmiType); got != fidelityARMAMIType {
		t.Errorf("%s amiType %q, want %q", fidelityARMGroup, got, fidelityARMAMIType)
	}
	kc, err := kubernetes.NewForConfig(w.g.Kube.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := kc.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: "eks.amazonaws.com/nodegroup"})
	if err != nil {
		t.Fatal(err)
	}
	arm := 0
	for _, n := range nodes.Items {
		wantArch := "amd64"
		if n.Labels["eks.amazonaws.com/nodegroup"] == fidelityARMGroup {
			wantArch, arm = "arm64", arm+1
		}
		if got := n.Labels[corev1.LabelArchStable]; got != wantArch {
			t.Errorf("node %s (group %s): arch %q, want %q", n.Name, n.Labels["eks.amazonaws.com/nodegroup"], got, wantArch)
		}
	}
	if arm == 0 {
		t.Errorf("no node of group %s", fidelityARMGroup)
	}
}

func (w *world) assertPublicGroup(t *testing.T, ctx context.Context, ec *eks.Client, ec2c *ec2.Client) {
	ng, err := ec.DescribeNodegroup(ctx, &eks.DescribeNodegroupInput{ClusterName: aws.String("coder-prod"), NodegroupName: aws.String(fidelityPublicGroup)})
	if err != nil {
		t.Fatal(err)
	}
	public := strings.Split(w.stateValues()["PUBLIC_SUBNET_IDS"], ",")
	if len(ng.Nodegroup.Subnets) == 0 {
		t.Fatalf("group %s has no subnets", fidelityPublicGroup)
	}
	for _, s := range ng.Nodegroup.Subnets {
		if !slices.Contains(public, s) {
			t.Errorf("group %s is in subnet %s, not one of the public subnets %v", fidelityPublicGroup, s, public)
		}
	}
	out, err := ec2c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: ng.Nodegroup.Subnets})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range out.Subnets {
		if !aws.ToBool(s.MapPublicIpOnLaunch) {
			t.Errorf("public subnet %s does not map public IPs on launch: EKS would fail the group", aws.ToString(s.SubnetId))
		}
	}
}

// assertIMDSv2 reads every launch template tagged for the deployment: one
// per node group, each requiring session tokens (IMDSv2).
func assertIMDSv2(t *testing.T, ctx context.Context, ec2c *ec2.Client) {
	lts, err := ec2c.DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{
		Filters: []ec2types.Filter{{Name: aws.String("tag:" + awsx.TagDeployment), Values: []string{"coder-prod"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(lts.LaunchTemplates) != 4 {
		t.Errorf("%d launch templates tagged for the deployment, want one per node group (4)", len(lts.LaunchTemplates))
	}
	for _, lt := range lts.LaunchTemplates {
		v, err := ec2c.DescribeLaunchTemplateVersions(ctx, &ec2.DescribeLaunchTemplateVersionsInput{
			LaunchTemplateId: lt.LaunchTemplateId, Versions: []string{"$Latest"}})
		if err != nil || len(v.LaunchTemplateVersions) != 1 {
			t.Fatalf("launch template %s: %v", aws.ToString(lt.LaunchTemplateName), err)
		}
		md := v.LaunchTemplateVersions[0].LaunchTemplateData.MetadataOptions
		if md == nil || md.HttpTokens != ec2types.LaunchTemplateHttpTokensStateRequired {
			t.Errorf("launch template %s does not require IMDSv2: %+v", aws.ToString(lt.LaunchTemplateName), md)
		}
	}
}
