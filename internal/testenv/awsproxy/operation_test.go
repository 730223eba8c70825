package awsproxy

import (
	"context"
	"net/url"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	route53types "github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// TestRESTRoutes: REST calls are named by the SDK operation whose method
// and URI template match, escaped ARNs in the path included; a call no
// template matches says so instead of being given a guessed name.
func TestRESTRoutes(t *testing.T) {
	for _, tc := range []struct {
		service, method, path string
		query                 string
		want                  string
	}{
		{"eks", "POST", "/clusters", "", "CreateCluster"},
		{"eks", "GET", "/clusters/c1", "", "DescribeCluster"},
		{"eks", "POST", "/clusters/c1/update-config", "", "UpdateClusterConfig"},
		{"eks", "POST", "/clusters/c1/encryption-config/associate", "", "AssociateEncryptionConfig"},
		{"eks", "GET", "/clusters/c1/updates/0f1e", "", "DescribeUpdate"},
		{"eks", "POST", "/clusters/c1/node-groups/ng/update-version", "", "UpdateNodegroupVersion"},
		{"eks", "POST", "/clusters/c1/addons/vpc-cni/update", "", "UpdateAddon"},
		{"eks", "GET", "/addons/supported-versions", "", "DescribeAddonVersions"},
		{"eks", "GET", "/addons/configuration-schemas", "", "DescribeAddonConfiguration"},
		{"eks", "GET", "/clusters/c1/access-entries/arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fci", "", "DescribeAccessEntry"},
		{"eks", "POST", "/clusters/c1/access-entries/arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fci/access-policies", "", "AssociateAccessPolicy"},
		{"eks", "DELETE", "/clusters/c1/access-entries/arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fci/access-policies/arn%3Aaws%3Aeks%3A%3Aaws%3Acluster-access-policy%2FX", "", "DisassociateAccessPolicy"},
		{"eks", "GET", "/access-policies", "", "ListAccessPolicies"},
		{"eks", "GET", "/clusters/c1/frobnicate", "", "?GET /clusters/c1/frobnicate"},
		{"route53", "GET", "/2013-04-01/hostedzone/Z0123456789ABC", "", "GetHostedZone"},
		{"route53", "POST", "/2013-04-01/hostedzone/Z0123456789ABC/rrset/", "", "ChangeResourceRecordSets"},
		{"route53", "GET", "/2013-04-01/hostedzone/Z0123456789ABC/rrset", "", "ListResourceRecordSets"},
		{"route53", "GET", "/2013-04-01/change/C2682N5HXP0BZ4", "", "GetChange"},
		{"s3", "HEAD", "/team-state", "", "HeadBucket"},
		{"s3", "GET", "/team-state", "versioning", "GetBucketVersioning"},
		{"s3", "PUT", "/team-state/coder/prod.env.lock", "", "PutObject"},
		{"s3", "HEAD", "/team-state/coder/prod.env", "", "HeadObject"},
		{"s3", "DELETE", "/team-state/coder/prod.env.lock", "", "DeleteObject"},
	} {
		q, _ := url.ParseQuery(tc.query)
		got := restRoute(tc.service, tc.method, tc.path)
		if tc.service == "s3" {
			got = s3Route(tc.method, tc.path, q)
		}
		if got != tc.want {
			t.Errorf("%s %s %s?%s = %q, want %q", tc.service, tc.method, tc.path, tc.query, got, tc.want)
		}
	}
}

// TestOperationsRecordsWhatTheSDKCalls: real SDK clients through the proxy
// (moto behind it) are recorded as "service:Operation" by the SDK's own
// names, and ResetCounts leaves the record alone.
func TestOperationsRecordsWhatTheSDKCalls(t *testing.T) {
	px := startProxy(t, Instant())
	cfg := awsConfig(t, px.URL, 1)
	ctx := context.Background()
	createCluster(t, eks.NewFromConfig(cfg), "c1")
	clusterStatus(t, eks.NewFromConfig(cfg), "c1")
	if _, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil {
		t.Fatal(err)
	}
	r53 := route53.NewFromConfig(cfg)
	zone, err := r53.CreateHostedZone(ctx, &route53.CreateHostedZoneInput{Name: aws.String("example.com"), CallerReference: aws.String("t")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r53.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{HostedZoneId: zone.HostedZone.Id,
		ChangeBatch: &route53types.ChangeBatch{Changes: []route53types.Change{{Action: route53types.ChangeActionUpsert,
			ResourceRecordSet: &route53types.ResourceRecordSet{Name: aws.String("a.example.com"), Type: route53types.RRTypeA, TTL: aws.Int64(60),
				ResourceRecords: []route53types.ResourceRecord{{Value: aws.String("192.0.2.1")}}}}}}}); err != nil {
		t.Fatal(err)
	}
	s3c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	_, _ = s3c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("no-such-bucket")})
	px.ResetCounts()
	got := px.Operations()
	for _, want := range []string{"eks:CreateCluster", "eks:DescribeCluster", "sts:GetCallerIdentity",
		"route53:CreateHostedZone", "route53:ChangeResourceRecordSets", "s3:HeadBucket"} {
		if !slices.Contains(got, want) {
			t.Errorf("Operations() = %v, lacks %s", got, want)
		}
	}
	px.ForgetOperations()
	if got := px.Operations(); len(got) != 0 {
		t.Errorf("after ForgetOperations: %v", got)
	}
}
