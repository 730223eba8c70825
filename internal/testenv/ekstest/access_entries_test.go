package ekstest

import (
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
)

const (
	testRole = "arn:aws:iam::123456789012:role/ci"
	// mototUser is moto's default caller, as EKS names the creator.
	motoUser = "arn:aws:iam::123456789012:user/moto"
)

// TestAccessEntryAPI walks the access entry calls through their answers
// and EKS's documented errors on a cluster with the creator's entry.
func TestAccessEntryAPI(t *testing.T) {
	_, e, _ := clients(t, Options{})
	c := newCluster(t, e, nil)
	if c.AccessConfig == nil || c.AccessConfig.AuthenticationMode != ekstypes.AuthenticationModeApiAndConfigMap || !aws.ToBool(c.AccessConfig.BootstrapClusterCreatorAdminPermissions) {
		t.Errorf("created cluster's accessConfig %+v, want EKS's defaults", c.AccessConfig)
	}
	cl, pr := aws.String("c1"), aws.String(testRole)
	list := func() []string {
		out, err := e.ListAccessEntries(ctx, &eks.ListAccessEntriesInput{ClusterName: cl})
		if err != nil {
			t.Fatal(err)
		}
		return out.AccessEntries
	}
	if got := list(); !slices.Equal(got, []string{motoUser}) {
		t.Errorf("entries of a new cluster %v, want the creator's", got)
	}

	_, err := e.CreateAccessEntry(ctx, &eks.CreateAccessEntryInput{ClusterName: cl, PrincipalArn: aws.String("arn:aws:s3:::bucket")})
	wantErr(t, err, "InvalidParameterException", "principalArn")
	if _, err := e.CreateAccessEntry(ctx, &eks.CreateAccessEntryInput{ClusterName: cl, PrincipalArn: pr, KubernetesGroups: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	_, err = e.CreateAccessEntry(ctx, &eks.CreateAccessEntryInput{ClusterName: cl, PrincipalArn: pr})
	wantErr(t, err, "ResourceInUseException", "already in use")

	_, err = e.AssociateAccessPolicy(ctx, &eks.AssociateAccessPolicyInput{ClusterName: cl, PrincipalArn: pr, PolicyArn: aws.String(AccessPolicyARN("AmazonEKSGodPolicy")),
		AccessScope: &ekstypes.AccessScope{Type: ekstypes.AccessScopeTypeCluster}})
	wantErr(t, err, "ResourceNotFoundException", "policyArn")
	_, err = e.AssociateAccessPolicy(ctx, &eks.AssociateAccessPolicyInput{ClusterName: cl, PrincipalArn: pr, PolicyArn: aws.String(AccessPolicyARN("AmazonEKSViewPolicy")),
		AccessScope: &ekstypes.AccessScope{Type: ekstypes.AccessScopeTypeNamespace}})
	wantErr(t, err, "InvalidParameterException", "accessScope")
	if _, err := e.AssociateAccessPolicy(ctx, &eks.AssociateAccessPolicyInput{ClusterName: cl, PrincipalArn: pr, PolicyArn: aws.String(AccessPolicyARN("AmazonEKSViewPolicy")),
		AccessScope: &ekstypes.AccessScope{Type: ekstypes.AccessScopeTypeNamespace, Namespaces: []string{"coder"}}}); err != nil {
		t.Fatal(err)
	}
	pols, err := e.ListAssociatedAccessPolicies(ctx, &eks.ListAssociatedAccessPoliciesInput{ClusterName: cl, PrincipalArn: pr})
	if err != nil || len(pols.AssociatedAccessPolicies) != 1 || !slices.Equal(pols.AssociatedAccessPolicies[0].AccessScope.Namespaces, []string{"coder"}) {
		t.Errorf("associated policies %+v (%v)", pols, err)
	}

	if _, err := e.UpdateAccessEntry(ctx, &eks.UpdateAccessEntryInput{ClusterName: cl, PrincipalArn: pr, KubernetesGroups: []string{"b"}, Username: aws.String("ci")}); err != nil {
		t.Fatal(err)
	}
	d, err := e.DescribeAccessEntry(ctx, &eks.DescribeAccessEntryInput{ClusterName: cl, PrincipalArn: pr})
	if err != nil || !slices.Equal(d.AccessEntry.KubernetesGroups, []string{"b"}) || aws.ToString(d.AccessEntry.Username) != "ci" || aws.ToString(d.AccessEntry.Type) != "STANDARD" {
		t.Errorf("described %+v (%v)", d, err)
	}

	if _, err := e.DisassociateAccessPolicy(ctx, &eks.DisassociateAccessPolicyInput{ClusterName: cl, PrincipalArn: pr, PolicyArn: aws.String(AccessPolicyARN("AmazonEKSViewPolicy"))}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.DeleteAccessEntry(ctx, &eks.DeleteAccessEntryInput{ClusterName: cl, PrincipalArn: pr}); err != nil {
		t.Fatal(err)
	}
	_, err = e.DeleteAccessEntry(ctx, &eks.DeleteAccessEntryInput{ClusterName: cl, PrincipalArn: pr})
	wantErr(t, err, "ResourceNotFoundException", "principalArn could not be found")
	_, err = e.ListAccessEntries(ctx, &eks.ListAccessEntriesInput{ClusterName: aws.String("nope")})
	wantErr(t, err, "ResourceNotFoundException", "No cluster found")

	policies, err := e.ListAccessPolicies(ctx, &eks.ListAccessPoliciesInput{})
	if err != nil || len(policies.AccessPolicies) < 4 {
		t.Errorf("ListAccessPolicies %+v (%v)", policies, err)
	}
}

// TestAuthenticationModes: CONFIG_MAP clusters refuse access entry calls
// and have no creator entry; the mode moves only towards API.
func TestAuthenticationModes(t *testing.T) {
	_, e, _ := clients(t, Options{})
	newCluster(t, e, &eks.CreateClusterInput{AccessConfig: &ekstypes.CreateAccessConfigRequest{AuthenticationMode: ekstypes.AuthenticationModeConfigMap}})
	cl := aws.String("c1")
	_, err := e.ListAccessEntries(ctx, &eks.ListAccessEntriesInput{ClusterName: cl})
	wantErr(t, err, "InvalidRequestException", "authentication mode")

	update := func(mode ekstypes.AuthenticationMode) error {
		_, err := e.UpdateClusterConfig(ctx, &eks.UpdateClusterConfigInput{Name: cl, AccessConfig: &ekstypes.UpdateAccessConfigRequest{AuthenticationMode: mode}})
		return err
	}
	if err := update(ekstypes.AuthenticationModeApiAndConfigMap); err != nil {
		t.Fatal(err)
	}
	if got := describeC(t, e).AccessConfig.AuthenticationMode; got != ekstypes.AuthenticationModeApiAndConfigMap {
		t.Errorf("mode after update %s", got)
	}
	wantErr(t, update(ekstypes.AuthenticationModeConfigMap), "InvalidParameterException", "Unsupported authentication mode update")
	out, err := e.ListAccessEntries(ctx, &eks.ListAccessEntriesInput{ClusterName: cl})
	if err != nil || len(out.AccessEntries) != 0 {
		t.Errorf("entries after CONFIG_MAP creation %v (%v), want none: no creator entry was bootstrapped", out, err)
	}
}
