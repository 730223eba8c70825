package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/kube"
	"github.com/coderctl/coderctl/internal/testenv/ekstest"
	"github.com/coderctl/coderctl/internal/testenv/moto"
)

// TestAccessCommandListsWhoGetsIn: the creator (the caller, moto's user),
// an entry coderctl made from the file (tagged with the deployment) and
// someone else's, each with its policies, in text and JSON.
func TestAccessCommandListsWhoGetsIn(t *testing.T) {
	emu := ekstest.Use(t, ekstest.Options{})
	cfg, err := moto.Require(t).AWSConfig(context.Background(), "us-west-2")
	if err != nil {
		t.Fatal(err)
	}
	client := eks.NewFromConfig(cfg, func(o *eks.Options) { o.BaseEndpoint = aws.String(emu.URL) })
	ctx := context.Background()
	if _, err := client.CreateCluster(ctx, &eks.CreateClusterInput{
		Name: aws.String("coder-prod"), Version: aws.String("1.34"), RoleArn: aws.String("arn:aws:iam::123456789012:role/r"),
		ResourcesVpcConfig: &ekstypes.VpcConfigRequest{SubnetIds: []string{"subnet-1", "subnet-2"}},
		AccessConfig:       &ekstypes.CreateAccessConfigRequest{AuthenticationMode: ekstypes.AuthenticationModeApiAndConfigMap, BootstrapClusterCreatorAdminPermissions: aws.Bool(true)},
	}); err != nil {
		t.Fatal(err)
	}
	const ci, other = "arn:aws:iam::123456789012:role/ci", "arn:aws:iam::123456789012:role/someone-else"
	if _, err := client.CreateAccessEntry(ctx, &eks.CreateAccessEntryInput{ClusterName: aws.String("coder-prod"), PrincipalArn: aws.String(ci),
		KubernetesGroups: []string{"devs"}, Tags: map[string]string{awsx.TagDeployment: "coder-prod"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.AssociateAccessPolicy(ctx, &eks.AssociateAccessPolicyInput{ClusterName: aws.String("coder-prod"), PrincipalArn: aws.String(ci),
		PolicyArn:   aws.String(ekstest.AccessPolicyARN("AmazonEKSViewPolicy")),
		AccessScope: &ekstypes.AccessScope{Type: ekstypes.AccessScopeTypeNamespace, Namespaces: []string{"coder", "apps"}}}); err != nil {
		t.Fatal(err)
	}
	emu.AccessEntryFor("coder-prod", other, ekstest.AccessPolicyARN("AmazonEKSEditPolicy"))
	r := newKubeCmdRun(t)

	stdout, _, err := r.run(newAccessCmd)
	if err != nil {
		t.Fatalf("access: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	wantRows := []struct{ principal, has string }{
		{ci, "AmazonEKSViewPolicy (namespace: apps,coder)"},
		{other, "AmazonEKSEditPolicy (cluster)"},
		{"arn:aws:iam::123456789012:user/moto", "AmazonEKSClusterAdminPolicy (cluster)"},
	}
	if len(lines) != 2+len(wantRows) || !strings.Contains(lines[0], "authentication mode API_AND_CONFIG_MAP, creator admin yes") {
		t.Fatalf("output:\n%s", stdout)
	}
	for i, w := range wantRows {
		row := lines[2+i]
		if !strings.HasPrefix(row, w.principal+" ") || !strings.Contains(row, w.has) {
			t.Errorf("row %d = %q, want %s with %s", i, row, w.principal, w.has)
		}
	}
	if !strings.Contains(lines[2], "devs") || !strings.HasSuffix(lines[2], "from cluster-config.yaml") {
		t.Errorf("coderctl's entry not marked: %q", lines[2])
	}
	if !strings.HasSuffix(lines[4], "you") || strings.HasSuffix(lines[3], "you") {
		t.Errorf("the caller is not (only) the creator: %q / %q", lines[3], lines[4])
	}

	r.output = "json"
	stdout, _, err = r.run(newAccessCmd)
	if err != nil {
		t.Fatalf("access -o json: %v", err)
	}
	var ev struct {
		Type   string
		Access kube.Access
	}
	if err := json.Unmarshal([]byte(stdout), &ev); err != nil {
		t.Fatalf("not one JSON event: %v\n%s", err, stdout)
	}
	if ev.Type != "access" || ev.Access.Caller != "arn:aws:iam::123456789012:user/moto" || len(ev.Access.Entries) != 3 ||
		ev.Access.Entries[0].Policies[0].Scope != "namespace" {
		t.Errorf("JSON event %+v", ev)
	}
}

// TestAccessCommandWithoutCluster says what to run first.
func TestAccessCommandWithoutCluster(t *testing.T) {
	ekstest.Use(t, ekstest.Options{})
	_, _, err := newKubeCmdRun(t).run(newAccessCmd)
	if err == nil || !strings.Contains(err.Error(), "EKS cluster coder-prod not found") || !strings.Contains(err.Error(), "stage eks apply") {
		t.Errorf("got %v, want the missing cluster explained", err)
	}
}
