package nodegroups

import (
	"context"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"

	"github.com/coderctl/coderctl/internal/engine"
)

// ltDrift is how a group's launch template, and the version the group
// runs, differ from cluster-config.yaml.
type ltDrift struct {
	// st is coderctl's template (nil: not created yet).
	st *ltState
	// newVersion: the latest version does not hold what is wanted.
	newVersion bool
	// roll: the group must move to coderctl's latest version.
	roll bool
	// changes name what the group's version lacks (the reason to roll).
	changes []string
	// fixed says why the group cannot use coderctl's template at all.
	fixed string
}

func (d ltDrift) fixedList() []string {
	if d.fixed == "" {
		return nil
	}
	return []string{d.fixed}
}

// ltDrift compares the group's template and version (ng may be nil: no
// group yet) with what is wanted. Read-only: plan, apply and verify use it.
func (s *stage) ltDrift(ctx context.Context, group string, ng *ekstypes.Nodegroup) (ltDrift, error) {
	mg := s.managedGroup(group)
	if mg == nil {
		return ltDrift{}, fmt.Errorf("node group %s is not in %s", group, s.d.ConfigPath)
	}
	want := s.wantedLT(mg)
	st, err := s.readLT(ctx, group)
	if err != nil {
		return ltDrift{}, err
	}
	d := ltDrift{st: st, newVersion: st == nil || len(ltChanges(st.latestData, want)) > 0}
	if st != nil && !st.owned {
		d.fixed = fmt.Sprintf("launch template %s exists but is not tagged for deployment %s", st.name, s.d.Deployment())
		return d, nil
	}
	if ng == nil {
		return d, nil
	}
	lt := ng.LaunchTemplate
	switch {
	case lt == nil:
		d.fixed = "the group has no launch template (EKS adds none to an existing group), so its volume, IMDS and instance tags are EKS's defaults"
		return d, nil
	case st == nil || aws.ToString(lt.Id) != st.id:
		d.fixed = fmt.Sprintf("the group uses launch template %s, not coderctl's %s", aws.ToString(lt.Id), s.ltName(group))
		return d, nil
	}
	have, err := s.ltVersion(ctx, st.id, aws.ToString(lt.Version))
	if err != nil {
		return ltDrift{}, err
	}
	d.changes = ltChanges(have, want)
	running := aws.ToString(lt.Version)
	switch {
	case len(d.changes) > 0:
	case d.newVersion:
		d.changes = []string{fmt.Sprintf("its latest version %d was made outside coderctl", st.latest)}
	case running != strconv.FormatInt(st.latest, 10):
		d.changes = []string{fmt.Sprintf("the group runs version %s, the latest is %d", running, st.latest)}
	}
	d.roll = len(d.changes) > 0
	return d, nil
}

// rollIfNeeded moves an ACTIVE group to coderctl's latest launch template
// version with UpdateNodegroupVersion (EKS replaces the nodes, draining
// each), waits for the update and returns the group as it then is.
// ensureLT has made the latest version hold what is wanted.
func (s *stage) rollIfNeeded(ctx context.Context, r engine.Reporter, ng *ekstypes.Nodegroup) (*ekstypes.Nodegroup, error) {
	name := aws.ToString(ng.NodegroupName)
	d, err := s.ltDrift(ctx, name, ng)
	if err != nil || !d.roll {
		return ng, err
	}
	version := strconv.FormatInt(d.st.latest, 10)
	in := &eks.UpdateNodegroupVersionInput{
		LaunchTemplate: &ekstypes.LaunchTemplateSpecification{Id: aws.String(d.st.id), Version: aws.String(version)},
		// One token per target version: a retried call after a kill does
		// not start a second rollout.
		ClientRequestToken: aws.String(s.clientToken("nodegroup-version/"+name, d.st.id+"/"+version)),
	}
	r.Progress(fmt.Sprintf("rolling node group %s to launch template %s version %s: %s", name, d.st.name, version, joinChanges(d.changes)))
	return s.group(name).UpdateVersion(ctx, r, in)
}
