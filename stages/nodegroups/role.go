package nodegroups

import (
	"context"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
)

// nodePolicies are the AWS managed policies EKS worker nodes need: joining
// the cluster, the VPC CNI's ENI management, pulling images from ECR, and
// Session Manager access instead of SSH.
var nodePolicies = []string{
	"AmazonEKSWorkerNodePolicy",
	"AmazonEKS_CNI_Policy",
	"AmazonEC2ContainerRegistryReadOnly",
	"AmazonSSMManagedInstanceCore",
}

// maxIAMNameLen is IAM's limit on role names.
const maxIAMNameLen = 64

// roleExistsWait is the wait for a new role to be readable (IAM is
// eventually consistent; EKS refuses a role it cannot see yet).
var roleExistsWait = awsx.WaitPolicy{MinDelay: time.Second, MaxDelay: 5 * time.Second, Timeout: 2 * time.Minute}

// partition is the AWS partition of the deployment's region, for ARNs and
// service principals.
func (s *stage) partition() string { return awsx.Partition(s.d.Region()) }

// policyARNs are the node policies' ARNs in this partition.
func (s *stage) policyARNs() []string {
	out := make([]string, len(nodePolicies))
	for i, p := range nodePolicies {
		out[i] = awsx.ManagedPolicyARN(s.partition(), p)
	}
	return out
}

// ec2Principal is EC2's service principal; China's partition spells it
// with its own suffix.
func (s *stage) ec2Principal() string {
	if s.partition() == "aws-cn" {
		return "ec2.amazonaws.com.cn"
	}
	return "ec2.amazonaws.com"
}

// nodeRole is the node role: EC2 may assume it (administrators may add
// statements and policies; they are left alone), with the node policies
// attached.
func (s *stage) nodeRole() awsx.RoleSpec {
	name := s.nodeRoleName()
	return awsx.RoleSpec{
		Name: name, Description: "EKS managed node groups of " + s.clusterName() + " (coderctl)",
		Deployment: s.d.Deployment(), Region: s.d.Region(), Tags: s.tags(name),
		Trust:       awsx.ServiceTrust(s.ec2Principal()),
		TrustAllows: func(doc string) bool { return awsx.TrustAllows(doc, s.ec2Principal()) },
		Managed:     s.policyARNs(), KeepOtherPolicies: true,
	}
}

func (s *stage) planRole(ctx context.Context) ([]engine.Action, error) {
	return s.nodeRole().Plan(ctx, s.d.AWS.IAM, "missing: create it with "+strings.Join(nodePolicies, ", "))
}

// applyRole creates the node role or converges its trust policy and policy
// attachments, recording its ARN as soon as it exists; a new role is
// waited for.
func (s *stage) applyRole(ctx context.Context, r engine.Reporter) error {
	r = reporter(r)
	st, err := s.nodeRole().Apply(ctx, s.d.AWS.IAM, r, func(arn string) error { return s.recordIfChanged(names.KeyNodeRoleARN, arn) })
	if err != nil || !st.Created {
		return err
	}
	return s.waitRole(ctx, r)
}

// waitRole waits until IAM serves the new role, so CreateNodegroup does
// not fail on a role it cannot see yet.
func (s *stage) waitRole(ctx context.Context, r engine.Reporter) error {
	wait := s.d.Opts.Wait.For(roleExistsWait)
	w := iam.NewRoleExistsWaiter(s.d.AWS.IAM, func(o *iam.RoleExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = wait.MinDelay, wait.MaxDelay
		o.Retryable = awsx.Watch(r, "IAM role "+s.nodeRoleName(), func(*iam.GetRoleOutput) string { return "exists" }, o.Retryable)
	})
	in := &iam.GetRoleInput{RoleName: aws.String(s.nodeRoleName())}
	return awsx.Describe("waiting for IAM role "+s.nodeRoleName(), w.Wait(ctx, in, wait.Timeout))
}

// destroyRole detaches the policies and deletes the role; a role that is
// gone is fine, one that is not ours is left alone. It runs after every
// group step's destroy; node groups this deployment tagged that are no
// longer in cluster-config.yaml still use the role, so they go first.
func (s *stage) destroyRole(ctx context.Context, r engine.Reporter) error {
	r = reporter(r)
	if err := s.destroyOrphanGroups(ctx, r); err != nil {
		return err
	}
	if err := s.nodeRole().Destroy(ctx, s.d.AWS.IAM, r); err != nil {
		return err
	}
	return s.d.State.Unset(names.KeyNodeRoleARN)
}
