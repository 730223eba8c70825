package rds

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	rdstypes "github.com/aws/aws-sdk-go-v2/service/rds/types"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
	"github.com/coderctl/coderctl/internal/state"
)

// The DB subnet group: the private subnets the database may run in.

func (s *stage) findSubnetGroup(ctx context.Context) (*rdstypes.DBSubnetGroup, error) {
	out, err := s.d.AWS.RDS.DescribeDBSubnetGroups(ctx, &rds.DescribeDBSubnetGroupsInput{DBSubnetGroupName: aws.String(s.name())})
	switch {
	case awsx.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, awsx.Describe("describe DB subnet group "+s.name(), err)
	case len(out.DBSubnetGroups) == 0:
		return nil, nil
	}
	g := &out.DBSubnetGroups[0]
	// Names are cleaned up into RDS's alphabet (Coder_Prod and coder-prod
	// both give coder-prod-coder-db), so a group of this name may be
	// another deployment's: never adopt, change or delete it.
	tags, err := s.d.AWS.RDS.ListTagsForResource(ctx, &rds.ListTagsForResourceInput{ResourceName: g.DBSubnetGroupArn})
	if err != nil {
		return nil, awsx.Describe("list the tags of DB subnet group "+s.name(), err)
	}
	if other := rdsTagMap(tags.TagList)[awsx.TagDeployment]; other != "" && other != s.d.Deployment() {
		return nil, fmt.Errorf("DB subnet group %s belongs to deployment %q, not %q: choose a cluster name that does not clean up to the same database name",
			s.name(), other, s.d.Deployment())
	}
	return g, nil
}

func subnetGroupIDs(g *rdstypes.DBSubnetGroup) []string {
	var ids []string
	for _, sn := range g.Subnets {
		ids = append(ids, aws.ToString(sn.SubnetIdentifier))
	}
	slices.Sort(ids)
	return ids
}

// wantSubnets are the private subnets, sorted; nil when the network stage
// has not recorded them yet.
func (s *stage) wantSubnets() []string {
	ids := state.SplitList(s.d.State.Get(names.KeyPrivateSubnetIDs))
	slices.Sort(ids)
	return ids
}

func (s *stage) planSubnetGroup(ctx context.Context) ([]engine.Action, error) {
	g, err := s.findSubnetGroup(ctx)
	if err != nil {
		return nil, err
	}
	res := "DB subnet group " + s.name()
	want := s.wantSubnets()
	switch {
	case g == nil && want == nil:
		return []engine.Action{{Kind: engine.Create, Resource: res, Reason: "over the private subnets the network stage creates"}}, nil
	case g == nil:
		return []engine.Action{{Kind: engine.Create, Resource: res, Reason: "over private subnets " + strings.Join(want, ", ")}}, nil
	case want != nil && !slices.Equal(subnetGroupIDs(g), want):
		return []engine.Action{{Kind: engine.Update, Resource: res,
			Reason: fmt.Sprintf("subnets %s differ from PRIVATE_SUBNET_IDS %s", strings.Join(subnetGroupIDs(g), ","), strings.Join(want, ","))}}, nil
	}
	return []engine.Action{{Kind: engine.Nothing, Resource: res, Reason: "exists over the private subnets"}}, nil
}

func (s *stage) applySubnetGroup(ctx context.Context, r engine.Reporter) error {
	if _, err := s.d.Output(names.KeyPrivateSubnetIDs, names.StageNetwork); err != nil {
		return err
	}
	want := s.wantSubnets()
	g, err := s.findSubnetGroup(ctx)
	if err != nil {
		return err
	}
	if g == nil {
		r.Progress("creating DB subnet group " + s.name())
		_, err := s.d.AWS.RDS.CreateDBSubnetGroup(ctx, &rds.CreateDBSubnetGroupInput{
			DBSubnetGroupName:        aws.String(s.name()),
			DBSubnetGroupDescription: aws.String("Coder database in the private subnets of " + s.d.Deployment()),
			SubnetIds:                want,
			Tags:                     rdsTags(s.tags(s.name())),
		})
		return awsx.Describe("create DB subnet group "+s.name(), err)
	}
	if !slices.Equal(subnetGroupIDs(g), want) {
		r.Progress("updating the subnets of DB subnet group " + s.name())
		_, err := s.d.AWS.RDS.ModifyDBSubnetGroup(ctx, &rds.ModifyDBSubnetGroupInput{
			DBSubnetGroupName: aws.String(s.name()), SubnetIds: want,
		})
		return awsx.Describe("modify DB subnet group "+s.name(), err)
	}
	return nil
}

func (s *stage) destroySubnetGroup(ctx context.Context, r engine.Reporter) error {
	g, err := s.findSubnetGroup(ctx)
	if err != nil || g == nil {
		return err
	}
	r.Progress("deleting DB subnet group " + s.name())
	_, err = s.d.AWS.RDS.DeleteDBSubnetGroup(ctx, &rds.DeleteDBSubnetGroupInput{DBSubnetGroupName: aws.String(s.name())})
	if awsx.IsNotFound(err) {
		return nil
	}
	return awsx.Describe("delete DB subnet group "+s.name(), err)
}

// RDS tag conversions (subnet group and instance).

func rdsTags(m map[string]string) []rdstypes.Tag {
	return awsx.TagList(m, func(k, v string) rdstypes.Tag { return rdstypes.Tag{Key: aws.String(k), Value: aws.String(v)} })
}

func rdsTagMap(tags []rdstypes.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}
