package iampolicy

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// Calls in the source, found by their shape: a client of awsx.Clients
// (s.d.AWS.EKS.DescribeCluster(...)), a paginator or a waiter of a service
// package. Calls through a local variable or an interface are not seen
// here; the e2e test sees those that the proving ground exercises.
var (
	clientCallRE = regexp.MustCompile(`\.(ACM|AutoScaling|EC2|EKS|ELB|IAM|RDS|Route53|SecretsManager|ServiceQuotas|STS)\.([A-Z][A-Za-z0-9]+)\(`)
	paginatorRE  = regexp.MustCompile(`\b(acm|autoscaling|ec2|eks|elbv2|iam|rds|route53|secretsmanager|servicequotas|sts|kms|cloudwatchlogs|s3)\.New([A-Z][A-Za-z0-9]+)Paginator\(`)
	waiterRE     = regexp.MustCompile(`\b(acm|autoscaling|ec2|eks|elbv2|iam|rds|route53|secretsmanager|kms|cloudwatchlogs|s3)\.New([A-Z][A-Za-z0-9]+)Waiter\(`)
)

var clientPrefix = map[string]string{
	"ACM": "acm", "AutoScaling": "autoscaling", "EC2": "ec2", "EKS": "eks", "ELB": "elasticloadbalancing", "IAM": "iam",
	"RDS": "rds", "Route53": "route53", "SecretsManager": "secretsmanager", "ServiceQuotas": "servicequotas", "STS": "sts",
}

var packagePrefix = map[string]string{"elbv2": "elasticloadbalancing", "cloudwatchlogs": "logs"}

// waiterCalls is the operation each SDK waiter polls.
var waiterCalls = map[string]string{
	"ec2.NatGatewayAvailable": "ec2:DescribeNatGateways", "ec2.NatGatewayDeleted": "ec2:DescribeNatGateways",
	"ec2.VpcAvailable": "ec2:DescribeVpcs", "ec2.VolumeAvailable": "ec2:DescribeVolumes", "ec2.VolumeDeleted": "ec2:DescribeVolumes",
	"eks.ClusterActive": "eks:DescribeCluster", "eks.ClusterDeleted": "eks:DescribeCluster",
	"eks.AddonActive": "eks:DescribeAddon", "eks.AddonDeleted": "eks:DescribeAddon",
	"eks.NodegroupActive": "eks:DescribeNodegroup", "eks.NodegroupDeleted": "eks:DescribeNodegroup",
	"acm.CertificateValidated": "acm:DescribeCertificate",
	"rds.DBInstanceAvailable":  "rds:DescribeDBInstances", "rds.DBInstanceDeleted": "rds:DescribeDBInstances",
	"rds.DBSnapshotAvailable":           "rds:DescribeDBSnapshots",
	"route53.ResourceRecordSetsChanged": "route53:GetChange",
	"iam.RoleExists":                    "iam:GetRole",
}

// TestEveryCallInTheCodeIsGranted: each AWS call the code makes in the
// recognisable shapes is granted by the policy for up, verify and down with
// every optional part on (a hosted zone, a KMS key, remote state). The e2e
// proves the calls the ground exercises; this one also catches a call the
// ground never reaches (an upgrade, a repair), as soon as it is written.
func TestEveryCallInTheCodeIsGranted(t *testing.T) {
	full := shipped
	full.KMSKey, full.StateBucket, full.StateKey = "arn:aws:kms:us-west-2:123456789012:key/k", "b", "k"
	granted := build(t, full, Selection{}).Actions()
	found := 0
	for _, root := range []string{"../../stages", "../../internal"} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (d.Name() == "testenv" || d.Name() == "codertest" || d.Name() == "e2e" || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, a := range callsIn(t, path, string(b)) {
				found++
				if !slices.Contains(granted, a) {
					t.Errorf("%s calls %s, which the policy does not grant: add it to internal/iampolicy/table.go", path, a)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if found < 100 {
		t.Fatalf("found only %d calls: the patterns no longer match the code", found)
	}
}

func callsIn(t *testing.T, path, src string) []string {
	var out []string
	for _, m := range clientCallRE.FindAllStringSubmatch(src, -1) {
		out = append(out, ActionFor(clientPrefix[m[1]]+":"+m[2]))
	}
	for _, m := range paginatorRE.FindAllStringSubmatch(src, -1) {
		prefix := m[1]
		if p, ok := packagePrefix[prefix]; ok {
			prefix = p
		}
		out = append(out, prefix+":"+m[2])
	}
	for _, m := range waiterRE.FindAllStringSubmatch(src, -1) {
		a, ok := waiterCalls[m[1]+"."+m[2]]
		if !ok {
			t.Errorf("%s uses the waiter %s.New%sWaiter: add the operation it polls to waiterCalls", path, m[1], m[2])
			continue
		}
		out = append(out, a)
	}
	return out
}
