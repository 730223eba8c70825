package nodegroups

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	api "github.com/weaveworks/eksctl/pkg/apis/eksctl.io/v1alpha5"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/engine"
)

func ltResource(name string) string { return "launch-template/" + name }

// ltState is a group's launch template as EC2 holds it.
type ltState struct {
	id, name string
	owned    bool
	latest   int64
	// latestData is the latest version's content.
	latestData ltFields
}

// readLT finds the group's launch template by name; nil when there is none.
func (s *stage) readLT(ctx context.Context, group string) (*ltState, error) {
	name := s.ltName(group)
	out, err := s.d.AWS.EC2.DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{LaunchTemplateNames: []string{name}})
	if awsx.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, awsx.Describe("EC2 DescribeLaunchTemplates "+name, err)
	}
	if len(out.LaunchTemplates) == 0 {
		return nil, nil
	}
	lt := out.LaunchTemplates[0]
	st := &ltState{id: aws.ToString(lt.LaunchTemplateId), name: name, latest: aws.ToInt64(lt.LatestVersionNumber)}
	tags := map[string]string{}
	for _, t := range lt.Tags {
		tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	st.owned = s.ownedBy(tags) && tags[awsx.TagStage] == Name
	if st.latestData, err = s.ltVersion(ctx, st.id, strconv.FormatInt(st.latest, 10)); err != nil {
		return nil, err
	}
	return st, nil
}

// ltVersion reads one version of a launch template.
func (s *stage) ltVersion(ctx context.Context, id, version string) (ltFields, error) {
	out, err := s.d.AWS.EC2.DescribeLaunchTemplateVersions(ctx, &ec2.DescribeLaunchTemplateVersionsInput{
		LaunchTemplateId: aws.String(id), Versions: []string{version},
	})
	if err != nil {
		return ltFields{}, awsx.Describe(fmt.Sprintf("EC2 DescribeLaunchTemplateVersions %s version %s", id, version), err)
	}
	if len(out.LaunchTemplateVersions) == 0 {
		return ltFields{}, fmt.Errorf("launch template %s has no version %s", id, version)
	}
	return fieldsOf(out.LaunchTemplateVersions[0].LaunchTemplateData), nil
}

// ensureLT makes the group's launch template hold what cluster-config.yaml
// asks for and returns its ID and the version that holds it: the latest
// one when it already does, else a new version (EC2 versions are
// immutable). A template of that name that is not this deployment's is
// left alone and refused.
func (s *stage) ensureLT(ctx context.Context, r engine.Reporter, ng *api.ManagedNodeGroup) (string, int64, error) {
	want := s.wantedLT(ng)
	st, err := s.readLT(ctx, ng.Name)
	if err != nil {
		return "", 0, err
	}
	if st == nil {
		return s.createLT(ctx, r, ng.Name, want)
	}
	if !st.owned {
		return "", 0, fmt.Errorf("launch template %s (%s) exists but is not tagged for deployment %s: delete or rename it", st.name, st.id, s.d.Deployment())
	}
	changes := ltChanges(st.latestData, want)
	if len(changes) == 0 {
		return st.id, st.latest, nil
	}
	r.Progress(fmt.Sprintf("launch template %s: new version (%s)", st.name, joinChanges(changes)))
	out, err := s.d.AWS.EC2.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{
		LaunchTemplateId:   aws.String(st.id),
		LaunchTemplateData: want.request(),
		// The same content on the same template gets the same token: a
		// run killed after this call does not add a second version.
		ClientToken: aws.String(s.clientToken("launch-template-version/"+ng.Name, st.id+"/"+want.digest())),
	})
	if err != nil {
		return "", 0, awsx.Describe("EC2 CreateLaunchTemplateVersion "+st.name, err)
	}
	return st.id, aws.ToInt64(out.LaunchTemplateVersion.VersionNumber), nil
}

func (s *stage) createLT(ctx context.Context, r engine.Reporter, group string, want ltFields) (string, int64, error) {
	name := s.ltName(group)
	token, err := s.createToken(ctx, "launch-template/"+group)
	if err != nil {
		return "", 0, err
	}
	r.Progress("creating launch template " + name)
	out, err := s.d.AWS.EC2.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String(name),
		LaunchTemplateData: want.request(),
		ClientToken:        aws.String(token),
		TagSpecifications: []ec2types.TagSpecification{{
			ResourceType: ec2types.ResourceTypeLaunchTemplate,
			Tags:         awsx.EC2Tags(s.tags(name)),
		}},
	})
	if awsx.ErrorCode(err) == "InvalidLaunchTemplateName.AlreadyExistsException" {
		// Created since we looked (a retried call; moto does not honour
		// the token): read it back, and check it as an existing one.
		st, rerr := s.readLT(ctx, group)
		if rerr != nil || st == nil || !st.owned {
			return "", 0, awsx.Describe("EC2 CreateLaunchTemplate "+name, err)
		}
		if ltChanges(st.latestData, want) == nil {
			return st.id, st.latest, nil
		}
		return "", 0, fmt.Errorf("launch template %s appeared while creating it with other content: run apply again", name)
	}
	if err != nil {
		return "", 0, awsx.Describe("EC2 CreateLaunchTemplate "+name, err)
	}
	return aws.ToString(out.LaunchTemplate.LaunchTemplateId), aws.ToInt64(out.LaunchTemplate.LatestVersionNumber), nil
}

// digest identifies a template's content for idempotency tokens.
func (f ltFields) digest() string {
	b, _ := json.Marshal(f.request())
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// deleteLT deletes the group's launch template once the group is gone. A
// template that is missing, or not this deployment's, is fine.
func (s *stage) deleteLT(ctx context.Context, r engine.Reporter, group string) error {
	st, err := s.readLT(ctx, group)
	if err != nil || st == nil {
		return err
	}
	if !st.owned {
		r.Notice(fmt.Sprintf("launch template %s is not tagged for deployment %s: left alone", st.name, s.d.Deployment()), nil)
		return nil
	}
	return s.deleteLTByID(ctx, r, st.id, st.name)
}

func (s *stage) deleteLTByID(ctx context.Context, r engine.Reporter, id, name string) error {
	r.Progress("deleting launch template " + name)
	_, err := s.d.AWS.EC2.DeleteLaunchTemplate(ctx, &ec2.DeleteLaunchTemplateInput{LaunchTemplateId: aws.String(id)})
	if err != nil && !awsx.IsNotFound(err) {
		return awsx.Describe("EC2 DeleteLaunchTemplate "+name, err)
	}
	return nil
}

// sweepLTs deletes this stage's launch templates whose group no longer
// exists (a group removed from cluster-config.yaml, or a run killed
// between a group's deletion and its template's). It runs after every
// group is gone.
func (s *stage) sweepLTs(ctx context.Context, r engine.Reporter) error {
	groups, err := s.listGroups(ctx)
	if err != nil {
		return err
	}
	pager := ec2.NewDescribeLaunchTemplatesPaginator(s.d.AWS.EC2, &ec2.DescribeLaunchTemplatesInput{
		Filters: []ec2types.Filter{
			{Name: aws.String("tag:" + awsx.TagDeployment), Values: []string{s.d.Deployment()}},
			{Name: aws.String("tag:" + awsx.TagStage), Values: []string{Name}},
		},
	})
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return awsx.Describe("EC2 DescribeLaunchTemplates", err)
		}
		for _, lt := range page.LaunchTemplates {
			if s.templateInUse(aws.ToString(lt.LaunchTemplateName), groups) {
				continue
			}
			if err := s.deleteLTByID(ctx, r, aws.ToString(lt.LaunchTemplateId), aws.ToString(lt.LaunchTemplateName)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *stage) templateInUse(name string, groups []string) bool {
	for _, g := range groups {
		if s.ltName(g) == name {
			return true
		}
	}
	return false
}

func joinChanges(changes []string) string { return strings.Join(changes, "; ") }
