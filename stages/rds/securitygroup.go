package rds

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
)

// The database's security group and its one ingress rule: 5432 from the
// EKS cluster security group, nothing else.

// findSecurityGroup looks the database security group up by the ID in
// state, then by name in the VPC. nil when it does not exist.
func (s *stage) findSecurityGroup(ctx context.Context) (*ec2types.SecurityGroup, error) {
	vpc := s.d.State.Get(names.KeyVPCID)
	if id := s.d.State.Get(names.KeyDBSecurityGroupID); id != "" {
		out, err := s.d.AWS.EC2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{id}})
		switch {
		case err != nil && !awsx.IsNotFound(err):
			return nil, awsx.Describe("describe security group "+id, err)
		case err == nil && len(out.SecurityGroups) > 0 && (vpc == "" || aws.ToString(out.SecurityGroups[0].VpcId) == vpc):
			return &out.SecurityGroups[0], nil
		}
	}
	if vpc == "" {
		return nil, nil
	}
	out, err := s.d.AWS.EC2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{vpc}},
		{Name: aws.String("group-name"), Values: []string{s.name()}},
	}})
	if err != nil {
		return nil, awsx.Describe("find security group "+s.name(), err)
	}
	if len(out.SecurityGroups) == 0 {
		return nil, nil
	}
	sg := &out.SecurityGroups[0]
	if other := awsx.EC2TagMap(sg.Tags)[awsx.TagDeployment]; other != "" && other != s.d.Deployment() {
		return nil, fmt.Errorf("security group %s (%s) in %s belongs to deployment %q, not %q: rename one of the clusters",
			s.name(), aws.ToString(sg.GroupId), vpc, other, s.d.Deployment())
	}
	return sg, nil
}

func (s *stage) planSecurityGroup(ctx context.Context) ([]engine.Action, error) {
	sg, err := s.findSecurityGroup(ctx)
	if err != nil {
		return nil, err
	}
	res := "security group " + s.name()
	switch {
	case sg == nil:
		return []engine.Action{{Kind: engine.Create, Resource: res, Reason: "for the database, in the deployment's VPC"}}, nil
	case !awsx.HasTags(awsx.EC2TagMap(sg.Tags), s.tags(s.name())):
		return []engine.Action{{Kind: engine.Update, Resource: res + " " + aws.ToString(sg.GroupId), Reason: "exists untagged: tag it"}}, nil
	}
	return []engine.Action{{Kind: engine.Nothing, Resource: res + " " + aws.ToString(sg.GroupId), Reason: "exists"}}, nil
}

func (s *stage) applySecurityGroup(ctx context.Context, r engine.Reporter) error {
	vpc, err := s.d.Output(names.KeyVPCID, names.StageNetwork)
	if err != nil {
		return err
	}
	sg, err := s.findSecurityGroup(ctx)
	if err != nil {
		return err
	}
	if sg == nil {
		r.Progress("creating security group " + s.name())
		out, err := s.d.AWS.EC2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
			GroupName:   aws.String(s.name()),
			Description: aws.String("Coder database: PostgreSQL from the EKS cluster only"),
			VpcId:       aws.String(vpc),
			TagSpecifications: []ec2types.TagSpecification{{
				ResourceType: ec2types.ResourceTypeSecurityGroup, Tags: awsx.EC2Tags(s.tags(s.name())),
			}},
		})
		if err != nil {
			return awsx.Describe("create security group "+s.name(), err)
		}
		return s.d.Record(map[string]string{names.KeyDBSecurityGroupID: aws.ToString(out.GroupId)})
	}
	id := aws.ToString(sg.GroupId)
	if !awsx.HasTags(awsx.EC2TagMap(sg.Tags), s.tags(s.name())) {
		r.Progress("tagging security group " + id)
		if _, err := s.d.AWS.EC2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: awsx.EC2Tags(s.tags(s.name()))}); err != nil {
			return awsx.Describe("tag security group "+id, err)
		}
	}
	if s.d.State.Get(names.KeyDBSecurityGroupID) != id {
		return s.d.Record(map[string]string{names.KeyDBSecurityGroupID: id})
	}
	return nil
}

// destroySecurityGroup retries while the deleted instance's network
// interfaces still hold the group (DependencyViolation for a minute or two
// after the instance is gone on real AWS).
func (s *stage) destroySecurityGroup(ctx context.Context, r engine.Reporter) error {
	sg, err := s.findSecurityGroup(ctx)
	if err != nil || sg == nil {
		if err == nil {
			err = s.d.State.Unset(names.KeyDBSecurityGroupID)
		}
		return err
	}
	id := aws.ToString(sg.GroupId)
	err = awsx.Poll(ctx, r, "security group "+id+" to be released", s.d.Opts.Wait, 10*time.Minute,
		func(ctx context.Context) (bool, string, error) {
			_, err := s.d.AWS.EC2.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(id)})
			switch {
			case err == nil || awsx.IsNotFound(err):
				return true, "deleted", nil
			case awsx.ErrorCode(err) == "DependencyViolation":
				return false, "still in use by a network interface", nil
			}
			return false, "", awsx.Describe("delete security group "+id, err)
		})
	if err != nil {
		return err
	}
	return s.d.State.Unset(names.KeyDBSecurityGroupID)
}

// ---- ingress rule ----

// ingressRules splits the group's ingress rules into the one coderctl
// wants (5432/tcp from the cluster security group) and any others.
func (s *stage) ingressRules(ctx context.Context, groupID, clusterSG string) (want *ec2types.SecurityGroupRule, extra []ec2types.SecurityGroupRule, err error) {
	pager := ec2.NewDescribeSecurityGroupRulesPaginator(s.d.AWS.EC2, &ec2.DescribeSecurityGroupRulesInput{
		Filters: []ec2types.Filter{{Name: aws.String("group-id"), Values: []string{groupID}}},
	})
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, nil, awsx.Describe("describe rules of security group "+groupID, err)
		}
		for i := range page.SecurityGroupRules {
			rule := page.SecurityGroupRules[i]
			switch {
			case aws.ToBool(rule.IsEgress):
			case want == nil && isWantedRule(rule, clusterSG):
				want = &rule
			default:
				extra = append(extra, rule)
			}
		}
	}
	return want, extra, nil
}

func isWantedRule(rule ec2types.SecurityGroupRule, clusterSG string) bool {
	return aws.ToString(rule.IpProtocol) == "tcp" && aws.ToInt32(rule.FromPort) == Port && aws.ToInt32(rule.ToPort) == Port &&
		rule.ReferencedGroupInfo != nil && aws.ToString(rule.ReferencedGroupInfo.GroupId) == clusterSG
}

// describeRule says what a rule lets in, for plans and checks.
func describeRule(rule ec2types.SecurityGroupRule) string {
	from := aws.ToString(rule.CidrIpv4)
	switch {
	case rule.ReferencedGroupInfo != nil:
		from = aws.ToString(rule.ReferencedGroupInfo.GroupId)
	case rule.CidrIpv6 != nil:
		from = aws.ToString(rule.CidrIpv6)
	case rule.PrefixListId != nil:
		from = aws.ToString(rule.PrefixListId)
	}
	ports := fmt.Sprintf("%d-%d", aws.ToInt32(rule.FromPort), aws.ToInt32(rule.ToPort))
	if rule.FromPort != nil && rule.ToPort != nil && *rule.FromPort == *rule.ToPort {
		ports = fmt.Sprint(*rule.FromPort)
	}
	return fmt.Sprintf("%s %s/%s from %s", aws.ToString(rule.SecurityGroupRuleId), ports, aws.ToString(rule.IpProtocol), from)
}

func describeRules(rules []ec2types.SecurityGroupRule) string {
	parts := make([]string, len(rules))
	for i, r := range rules {
		parts[i] = describeRule(r)
	}
	return strings.Join(parts, "; ")
}

func (s *stage) planIngressRule(ctx context.Context) ([]engine.Action, error) {
	res := fmt.Sprintf("ingress %d/tcp from the cluster security group", Port)
	clusterSG := s.d.State.Get(names.KeyClusterSecurityGroupID)
	sg, err := s.findSecurityGroup(ctx)
	if err != nil {
		return nil, err
	}
	if sg == nil || clusterSG == "" {
		return []engine.Action{{Kind: engine.Create, Resource: res, Reason: "once the database security group and the EKS cluster exist"}}, nil
	}
	want, extra, err := s.ingressRules(ctx, aws.ToString(sg.GroupId), clusterSG)
	if err != nil {
		return nil, err
	}
	var acts []engine.Action
	if want == nil {
		acts = append(acts, engine.Action{Kind: engine.Create, Resource: res + " " + clusterSG, Reason: "the database only accepts the cluster"})
	}
	if len(extra) > 0 {
		acts = append(acts, engine.Action{Kind: engine.Update, Resource: "security group " + aws.ToString(sg.GroupId),
			Reason: "revoke ingress other than the cluster's: " + describeRules(extra)})
	}
	if len(acts) == 0 {
		acts = append(acts, engine.Action{Kind: engine.Nothing, Resource: res + " " + clusterSG, Reason: "present, and the only ingress rule"})
	}
	return acts, nil
}

// applyIngressRule makes 5432 from the cluster security group the group's
// only ingress rule: the database's contract is that nothing else reaches
// it, so rules added by hand are revoked (plan lists them first).
func (s *stage) applyIngressRule(ctx context.Context, r engine.Reporter) error {
	clusterSG, err := s.d.Output(names.KeyClusterSecurityGroupID, names.StageEKS)
	if err != nil {
		return err
	}
	groupID, err := s.d.Output(names.KeyDBSecurityGroupID, Name)
	if err != nil {
		return err
	}
	want, extra, err := s.ingressRules(ctx, groupID, clusterSG)
	if err != nil {
		return err
	}
	if want == nil {
		r.Progress(fmt.Sprintf("allowing %d/tcp from %s", Port, clusterSG))
		_, err := s.d.AWS.EC2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
			GroupId: aws.String(groupID),
			IpPermissions: []ec2types.IpPermission{{
				IpProtocol: aws.String("tcp"), FromPort: aws.Int32(Port), ToPort: aws.Int32(Port),
				UserIdGroupPairs: []ec2types.UserIdGroupPair{{GroupId: aws.String(clusterSG), Description: aws.String("PostgreSQL from the EKS cluster")}},
			}},
			TagSpecifications: []ec2types.TagSpecification{{
				ResourceType: ec2types.ResourceTypeSecurityGroupRule, Tags: awsx.EC2Tags(s.tags(s.name() + "-from-cluster")),
			}},
		})
		if err != nil && awsx.ErrorCode(err) != "InvalidPermission.Duplicate" {
			return awsx.Describe("authorize ingress on "+groupID, err)
		}
	}
	if len(extra) == 0 {
		return nil
	}
	r.Notice("revoking ingress rules the database must not have: "+describeRules(extra), nil)
	ids := make([]string, len(extra))
	for i, rule := range extra {
		ids[i] = aws.ToString(rule.SecurityGroupRuleId)
	}
	_, err = s.d.AWS.EC2.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(groupID), SecurityGroupRuleIds: ids})
	return awsx.Describe("revoke extra ingress on "+groupID, err)
}

// destroyIngressRule revokes the cluster's rule, unless the database is
// being kept: then the rule stays, so the refusal leaves it reachable.
func (s *stage) destroyIngressRule(ctx context.Context, r engine.Reporter) error {
	if err := s.refuseProtectedDelete(ctx); err != nil {
		return err
	}
	clusterSG := s.d.State.Get(names.KeyClusterSecurityGroupID)
	sg, err := s.findSecurityGroup(ctx)
	if err != nil || sg == nil || clusterSG == "" {
		return err
	}
	want, _, err := s.ingressRules(ctx, aws.ToString(sg.GroupId), clusterSG)
	if err != nil || want == nil {
		return err
	}
	r.Progress("revoking " + describeRule(*want))
	_, err = s.d.AWS.EC2.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{
		GroupId: sg.GroupId, SecurityGroupRuleIds: []string{aws.ToString(want.SecurityGroupRuleId)},
	})
	if awsx.IsNotFound(err) {
		return nil
	}
	return awsx.Describe("revoke ingress on "+aws.ToString(sg.GroupId), err)
}
