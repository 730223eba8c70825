package nodegroups

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/engine"
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

// roleExistsTimeout bounds waiting for a new role to be readable (IAM is
// eventually consistent; EKS refuses a role it cannot see yet).
const roleExistsTimeout = 2 * time.Minute

// roleState is what IAM says about the node role.
type roleState struct {
	arn     string
	id      string // unique per incarnation of the role
	trustOK bool
	missing []string // ARNs of node policies not attached
}

func (s *stage) roleResource() string { return "iam-role/" + s.nodeRoleName() }

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

// trust lets EC2 instances assume the role.
func (s *stage) trust() map[string]any { return awsx.ServiceTrust(s.ec2Principal()) }

// readRole finds the node role; nil when it does not exist. A role of that
// name not tagged for this deployment belongs to something else: an error.
func (s *stage) readRole(ctx context.Context) (*roleState, error) {
	name := s.nodeRoleName()
	out, err := s.d.AWS.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
	if awsx.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, awsx.Describe("IAM GetRole "+name, err)
	}
	if !s.ownedBy(awsx.IAMTags(out.Role.Tags)) {
		return nil, fmt.Errorf("IAM role %s exists but is not tagged coderctl/deployment=%s: it belongs to something else; delete it or choose another CLUSTER_NAME",
			name, s.d.Deployment())
	}
	attached, err := awsx.AttachedRolePolicies(ctx, s.d.AWS.IAM, name)
	if err != nil {
		return nil, err
	}
	st := &roleState{
		arn:     aws.ToString(out.Role.Arn),
		id:      aws.ToString(out.Role.RoleId),
		trustOK: trustAllows(aws.ToString(out.Role.AssumeRolePolicyDocument), s.ec2Principal()),
	}
	for _, want := range s.policyARNs() {
		if !slices.Contains(attached, want) {
			st.missing = append(st.missing, want)
		}
	}
	return st, nil
}

func (s *stage) planRole(ctx context.Context) ([]engine.Action, error) {
	st, err := s.readRole(ctx)
	if err != nil {
		return nil, err
	}
	switch {
	case st == nil:
		return action(engine.Create, s.roleResource(), "missing: create it with %s", strings.Join(nodePolicies, ", ")), nil
	case !st.trustOK:
		return action(engine.Update, s.roleResource(), "trust policy does not let EC2 assume it: rewrite it"), nil
	case len(st.missing) > 0:
		return action(engine.Update, s.roleResource(), "not attached: %s: attach", strings.Join(policyNames(st.missing), ", ")), nil
	}
	return action(engine.Nothing, s.roleResource(), "exists with its trust policy and the %d node policies", len(nodePolicies)), nil
}

// applyRole creates the node role or converges its trust policy and policy
// attachments, recording its ARN as soon as it exists.
func (s *stage) applyRole(ctx context.Context, r engine.Reporter) error {
	r = reporter(r)
	st, err := s.readRole(ctx)
	if err != nil {
		return err
	}
	created := false
	if st == nil {
		if st, err = s.createRole(ctx); err != nil {
			return err
		}
		created = true
	}
	if err := s.recordIfChanged(KeyNodeRoleARN, st.arn); err != nil {
		return err
	}
	if !st.trustOK {
		doc, _ := json.Marshal(s.trust())
		if _, err := s.d.AWS.IAM.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{
			RoleName: aws.String(s.nodeRoleName()), PolicyDocument: aws.String(string(doc)),
		}); err != nil {
			return awsx.Describe("IAM UpdateAssumeRolePolicy "+s.nodeRoleName(), err)
		}
	}
	for _, arn := range st.missing {
		r.Progress("attaching " + awsx.PolicyName(arn) + " to " + s.nodeRoleName())
		if _, err := s.d.AWS.IAM.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{
			RoleName: aws.String(s.nodeRoleName()), PolicyArn: aws.String(arn),
		}); err != nil {
			return awsx.Describe("IAM AttachRolePolicy "+awsx.PolicyName(arn)+" to "+s.nodeRoleName(), err)
		}
	}
	if created {
		return s.waitRole(ctx, r)
	}
	return nil
}

// createRole creates the role, tagged at creation. IAM has no idempotency
// token; the role's fixed name is what makes a repeated create safe.
func (s *stage) createRole(ctx context.Context) (*roleState, error) {
	name := s.nodeRoleName()
	doc, err := json.Marshal(s.trust())
	if err != nil {
		return nil, err
	}
	out, err := s.d.AWS.IAM.CreateRole(ctx, &iam.CreateRoleInput{
		RoleName:                 aws.String(name),
		AssumeRolePolicyDocument: aws.String(string(doc)),
		Description:              aws.String("EKS managed node groups of " + s.clusterName() + " (coderctl)"),
		Tags:                     awsx.IAMTagList(s.tags(name)),
	})
	if awsx.ErrorCode(err) == "EntityAlreadyExists" {
		// Created since we looked (another run, or a retried call).
		if st, rerr := s.readRole(ctx); rerr == nil && st != nil {
			return st, nil
		}
	}
	if err != nil {
		return nil, awsx.Describe("IAM CreateRole "+name, err)
	}
	return &roleState{arn: aws.ToString(out.Role.Arn), id: aws.ToString(out.Role.RoleId), trustOK: true, missing: s.policyARNs()}, nil
}

// waitRole waits until IAM serves the new role, so CreateNodegroup does
// not fail on a role it cannot see yet.
func (s *stage) waitRole(ctx context.Context, r engine.Reporter) error {
	lo, hi := s.d.Opts.Wait.Delays(time.Second, 5*time.Second)
	w := iam.NewRoleExistsWaiter(s.d.AWS.IAM, func(o *iam.RoleExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = lo, hi
		o.Retryable = awsx.Watch(r, "IAM role "+s.nodeRoleName(), func(*iam.GetRoleOutput) string { return "exists" }, o.Retryable)
	})
	in := &iam.GetRoleInput{RoleName: aws.String(s.nodeRoleName())}
	return awsx.Describe("waiting for IAM role "+s.nodeRoleName(), w.Wait(ctx, in, s.d.Opts.Wait.WaitTimeout(roleExistsTimeout)))
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
	name := s.nodeRoleName()
	out, err := s.d.AWS.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
	if awsx.IsNotFound(err) {
		return s.d.State.Unset(KeyNodeRoleARN)
	}
	if err != nil {
		return awsx.Describe("IAM GetRole "+name, err)
	}
	if !s.ownedBy(awsx.IAMTags(out.Role.Tags)) {
		r.Notice(fmt.Sprintf("IAM role %s is not tagged for deployment %s: left alone", name, s.d.Deployment()), nil)
		return nil
	}
	r.Progress("deleting IAM role " + name)
	if err := awsx.DeleteRole(ctx, s.d.AWS.IAM, name); err != nil {
		return err
	}
	return s.d.State.Unset(KeyNodeRoleARN)
}

func policyNames(arns []string) []string {
	out := make([]string, len(arns))
	for i, a := range arns {
		out[i] = awsx.PolicyName(a)
	}
	return out
}

// trustAllows reports whether a trust policy as IAM returns it (URL
// encoded, possibly reformatted) has an Allow statement letting the wanted
// service principal assume the role. Other statements (added by an
// administrator) are tolerated.
func trustAllows(encoded, principal string) bool {
	doc := encoded
	if !strings.HasPrefix(strings.TrimSpace(doc), "{") {
		var err error
		if doc, err = url.QueryUnescape(encoded); err != nil {
			return false
		}
	}
	var policy struct {
		Statement []struct {
			Effect    string
			Principal struct{ Service any }
			Action    any
		}
	}
	if err := json.Unmarshal([]byte(doc), &policy); err != nil {
		return false
	}
	for _, st := range policy.Statement {
		if st.Effect == "Allow" && oneOrMany(st.Principal.Service, principal) && oneOrMany(st.Action, "sts:AssumeRole") {
			return true
		}
	}
	return false
}

// oneOrMany reports whether a policy field (a string or a list of strings)
// holds want.
func oneOrMany(v any, want string) bool {
	switch t := v.(type) {
	case string:
		return t == want
	case []any:
		for _, x := range t {
			if s, ok := x.(string); ok && s == want {
				return true
			}
		}
	}
	return false
}
