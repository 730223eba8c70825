package eks

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
)

// Add-on names coderctl treats specially.
const (
	addonVPCCNI    = "vpc-cni"
	addonCoreDNS   = "coredns"
	addonKubeProxy = "kube-proxy"
	addonEBSCSI    = "aws-ebs-csi-driver"
	addonEFSCSI    = "aws-efs-csi-driver"
)

// Waiting for add-ons: the SDK waiters' own delays; EKS usually needs
// one to three minutes.
var (
	addonActiveWait  = awsx.WaitPolicy{MinDelay: 10 * time.Second, MaxDelay: 120 * time.Second, Timeout: 20 * time.Minute}
	addonDeletedWait = awsx.WaitPolicy{MinDelay: 10 * time.Second, MaxDelay: 120 * time.Second, Timeout: 15 * time.Minute}
)

// defaultAddons are created when cluster-config.yaml lists none: the three
// EKS itself needs (eksctl creates them by default) and the EBS CSI driver
// that workspaces' persistent volumes need.
func defaultAddons() []string {
	return []string{addonVPCCNI, addonCoreDNS, addonKubeProxy, addonEBSCSI}
}

// needsNodes reports add-ons whose pods are Deployments: without nodes they
// stay CREATING or DEGRADED, so this stage, which runs before the node
// groups exist, does not wait for them (eksctl does the same). The
// nodegroups stage's nodes make them ACTIVE; verify checks it then.
func needsNodes(name string) bool {
	return name == addonCoreDNS || name == addonEBSCSI || name == addonEFSCSI
}

// addonSpec is one managed add-on as the file asks for it.
type addonSpec struct {
	name string
	// version is "" for EKS's default for the cluster's Kubernetes version,
	// "latest", or an exact add-on version.
	version string
	// roleARN is the file's serviceAccountRoleARN; the EBS CSI driver gets
	// coderctl's IRSA role when the file sets none.
	roleARN string
	// field is where the file sets it ("addons[2]"), "" for a default.
	field string
	// values are the file's configurationValues, JSON or YAML as written
	// ("" for none: coderctl then leaves the add-on's as they are, as
	// `eksctl update addon` does).
	values string
}

func (s *stage) wantedAddons() []addonSpec {
	var out []addonSpec
	for i, a := range s.d.Cluster.Addons {
		if a == nil || a.Name == "" {
			continue
		}
		out = append(out, addonSpec{name: a.Name, version: a.Version, roleARN: a.ServiceAccountRoleARN, field: fmt.Sprintf("addons[%d]", i), values: a.ConfigurationValues})
	}
	if len(out) > 0 {
		return out
	}
	for _, name := range defaultAddons() {
		out = append(out, addonSpec{name: name})
	}
	return out
}

// roleFor is the service-account role an add-on should run with; apply
// passes the recorded EBS CSI role, plan and verify what state holds.
func (s *stage) roleFor(a addonSpec, ebsRole string) string {
	if a.roleARN != "" {
		return a.roleARN
	}
	if a.name == addonEBSCSI {
		return ebsRole
	}
	return ""
}

// describeAddon returns the add-on, nil when it does not exist.
func (s *stage) describeAddon(ctx context.Context, name string) (*ekstypes.Addon, error) {
	out, err := s.d.AWS.EKS.DescribeAddon(ctx, &eks.DescribeAddonInput{ClusterName: aws.String(s.clusterName()), AddonName: aws.String(name)})
	if awsx.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, awsx.Describe("EKS DescribeAddon "+name, err)
	}
	return out.Addon, nil
}

// hasNodeGroups reports whether the cluster has any node group yet.
func (s *stage) hasNodeGroups(ctx context.Context) (bool, error) {
	out, err := s.d.AWS.EKS.ListNodegroups(ctx, &eks.ListNodegroupsInput{ClusterName: aws.String(s.clusterName())})
	if err != nil {
		return false, awsx.Describe("EKS ListNodegroups "+s.clusterName(), err)
	}
	return len(out.Nodegroups) > 0, nil
}

// exactVersion resolves "latest" with DescribeAddonVersions; "" stays ""
// (EKS then installs its default for the cluster's version).
func (s *stage) exactVersion(ctx context.Context, a addonSpec, k8sVersion string) (string, error) {
	if a.version != "latest" {
		return a.version, nil
	}
	versions, err := s.addonVersions(ctx, a.name, k8sVersion)
	if err != nil {
		return "", err
	}
	if len(versions) == 0 {
		return "", fmt.Errorf("EKS offers no version of add-on %s for Kubernetes %s", a.name, k8sVersion)
	}
	return versions[0], nil
}

// addonVersions lists an add-on's versions for a Kubernetes version,
// newest first as EKS returns them; nil when EKS does not know the add-on.
func (s *stage) addonVersions(ctx context.Context, name, k8sVersion string) ([]string, error) {
	var versions []string
	pager := eks.NewDescribeAddonVersionsPaginator(s.d.AWS.EKS, &eks.DescribeAddonVersionsInput{
		AddonName: aws.String(name), KubernetesVersion: aws.String(k8sVersion),
	})
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, awsx.Describe("EKS DescribeAddonVersions "+name, err)
		}
		for _, info := range page.Addons {
			for _, v := range info.AddonVersions {
				versions = append(versions, aws.ToString(v.AddonVersion))
			}
		}
	}
	return versions, nil
}

// addonDrift says what UpdateAddon would change ("" when nothing).
func addonDrift(cur *ekstypes.Addon, a addonSpec, role, version string) string {
	var diffs []string
	if changed := valuesDrift(aws.ToString(cur.ConfigurationValues), a.values); changed != "" {
		diffs = append(diffs, changed)
	}
	if role != "" && aws.ToString(cur.ServiceAccountRoleArn) != role {
		diffs = append(diffs, fmt.Sprintf("service account role %q, want %s", aws.ToString(cur.ServiceAccountRoleArn), role))
	}
	if version != "" && aws.ToString(cur.AddonVersion) != version {
		diffs = append(diffs, fmt.Sprintf("version %s, want %s", aws.ToString(cur.AddonVersion), version))
	}
	return strings.Join(diffs, "; ")
}

func (s *stage) planAddons(ctx context.Context) ([]engine.Action, error) {
	c, err := s.describeCluster(ctx)
	if err != nil {
		return nil, err
	}
	var acts []engine.Action
	for _, a := range s.wantedAddons() {
		res := "eks-addon/" + a.name
		if c == nil {
			acts = append(acts, engine.Action{Kind: engine.Create, Resource: res, Reason: "create once the cluster exists"})
			continue
		}
		cur, err := s.describeAddon(ctx, a.name)
		if err != nil {
			return nil, err
		}
		version := a.version
		if version == "latest" {
			version = "" // resolved by apply; "latest" moves, so it is no drift
		}
		if cur == nil {
			acts = append(acts, engine.Action{Kind: engine.Create, Resource: res, Reason: "missing: " + addonWords(a)})
			continue
		}
		if drift := addonDrift(cur, a, s.roleFor(a, s.d.State.Get(names.KeyEBSCSIRoleARN)), version); drift != "" {
			acts = append(acts, engine.Action{Kind: engine.Update, Resource: res, Reason: drift})
			continue
		}
		acts = append(acts, engine.Action{Kind: engine.Nothing, Resource: res, Reason: fmt.Sprintf("%s, version %s", cur.Status, aws.ToString(cur.AddonVersion))})
	}
	return acts, nil
}

func addonWords(a addonSpec) string {
	w := "create it"
	switch a.version {
	case "":
		w += " (EKS's default version for the cluster)"
	case "latest":
		w += " (latest version)"
	default:
		w += " (version " + a.version + ")"
	}
	if a.name == addonEBSCSI && a.roleARN == "" {
		w += " with the " + addonEBSCSI + " IRSA role"
	}
	if a.values != "" {
		w += " and configuration values (" + strings.Join(valueKeys(a.values), ", ") + ")"
	}
	return w
}

// applyAddons creates or converges every add-on, then waits for those
// that can become ACTIVE without nodes, in parallel.
func (s *stage) applyAddons(ctx context.Context, r engine.Reporter) error {
	c, err := s.describeCluster(ctx)
	if err != nil {
		return err
	}
	if c == nil {
		return fmt.Errorf("EKS cluster %s not found: the eks/cluster step must succeed first", s.clusterName())
	}
	ebsRole, err := s.d.Output(names.KeyEBSCSIRoleARN, Name)
	if err != nil {
		return err
	}
	var names []string
	for _, a := range s.wantedAddons() {
		if err := s.ensureAddon(ctx, r, c, a, s.roleFor(a, ebsRole)); err != nil {
			return err
		}
		names = append(names, a.name)
	}
	return s.waitAddons(ctx, r, names)
}

// waitAddons waits for the named add-ons in parallel, except, while the
// cluster has no node group, those that need nodes (needsNodes).
func (s *stage) waitAddons(ctx context.Context, r engine.Reporter, names []string) error {
	if len(names) == 0 {
		return nil
	}
	hasNodes, err := s.hasNodeGroups(ctx)
	if err != nil {
		return err
	}
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		if needsNodes(name) && !hasNodes {
			r.Progress(name + " becomes ACTIVE once node groups exist (the nodegroups stage); not waiting for it")
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.waitAddon(ctx, r, name)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// ensureAddon creates the add-on or converges its role and version. The
// client token is tied to the cluster's ARN and creation time, so a new
// cluster after a destroy does not reuse its predecessor's tokens.
func (s *stage) ensureAddon(ctx context.Context, r engine.Reporter, c *ekstypes.Cluster, a addonSpec, role string) error {
	version, err := s.exactVersion(ctx, a, aws.ToString(c.Version))
	if err != nil {
		return err
	}
	cur, err := s.describeAddon(ctx, a.name)
	if err != nil {
		return err
	}
	inc := incarnation(c)
	if cur == nil {
		r.Progress("creating add-on " + a.name)
		_, err := s.d.AWS.EKS.CreateAddon(ctx, &eks.CreateAddonInput{
			ClusterName:           aws.String(s.clusterName()),
			AddonName:             aws.String(a.name),
			AddonVersion:          optional(version),
			ServiceAccountRoleArn: optional(role),
			ConfigurationValues:   optional(a.values),
			// EKS installs self-managed vpc-cni, coredns and kube-proxy with
			// every cluster; OVERWRITE lets the managed add-on take them over.
			ResolveConflicts:   ekstypes.ResolveConflictsOverwrite,
			ClientRequestToken: aws.String(s.clientToken("addon/"+a.name, inc)),
			Tags:               s.tags(a.name),
		})
		if err != nil && awsx.ErrorCode(err) != "ResourceInUseException" {
			return awsx.Describe("EKS CreateAddon "+a.name, err)
		}
		return nil
	}
	switch cur.Status {
	case ekstypes.AddonStatusDeleting:
		return fmt.Errorf("EKS add-on %s is being deleted: wait until it is gone, then apply again", a.name)
	case ekstypes.AddonStatusCreateFailed:
		return fmt.Errorf("EKS add-on %s is CREATE_FAILED%s: delete it ('coderctl stage eks destroy' or the EKS console), then apply again", a.name, addonHealth(cur))
	}
	drift := addonDrift(cur, a, role, version)
	if drift == "" {
		return nil
	}
	r.Progress("updating add-on " + a.name + ": " + drift)
	_, err = s.d.AWS.EKS.UpdateAddon(ctx, &eks.UpdateAddonInput{
		ClusterName:           aws.String(s.clusterName()),
		AddonName:             aws.String(a.name),
		AddonVersion:          optional(version),
		ServiceAccountRoleArn: optional(role),
		ConfigurationValues:   optional(a.values),
		ResolveConflicts:      ekstypes.ResolveConflictsOverwrite,
		ClientRequestToken:    aws.String(s.clientToken("addon-update/"+a.name, inc+"|"+role+"|"+version+"|"+a.values)),
	})
	return awsx.Describe("EKS UpdateAddon "+a.name, err)
}

func optional(v string) *string {
	if v == "" {
		return nil
	}
	return aws.String(v)
}

func addonHealth(a *ekstypes.Addon) string {
	if a.Health == nil || len(a.Health.Issues) == 0 {
		return ""
	}
	var msgs []string
	for _, i := range a.Health.Issues {
		msgs = append(msgs, string(i.Code)+": "+aws.ToString(i.Message))
	}
	return " (" + strings.Join(msgs, "; ") + ")"
}

func addonStatus(out *eks.DescribeAddonOutput) string {
	if out.Addon == nil {
		return "unknown"
	}
	return string(out.Addon.Status)
}

// waitAddon waits for ACTIVE with the SDK's waiter, reporting each poll.
func (s *stage) waitAddon(ctx context.Context, r engine.Reporter, name string) error {
	wait := s.d.Opts.Wait.For(addonActiveWait)
	waiter := eks.NewAddonActiveWaiter(s.d.AWS.EKS, func(o *eks.AddonActiveWaiterOptions) {
		o.MinDelay, o.MaxDelay = wait.MinDelay, wait.MaxDelay
		o.Retryable = awsx.Watch(r, "add-on "+name, addonStatus, o.Retryable)
	})
	in := &eks.DescribeAddonInput{ClusterName: aws.String(s.clusterName()), AddonName: aws.String(name)}
	if err := waiter.Wait(ctx, in, wait.Timeout); err != nil {
		detail := ""
		if cur, derr := s.describeAddon(ctx, name); derr == nil && cur != nil {
			detail = " (status " + string(cur.Status) + addonHealth(cur) + ")"
		}
		return fmt.Errorf("waiting for EKS add-on %s to be ACTIVE%s: %w", name, detail, err)
	}
	return nil
}

// destroyAddons deletes the add-ons and waits until they are gone; with
// the cluster gone there is nothing to do.
func (s *stage) destroyAddons(ctx context.Context, r engine.Reporter) error {
	c, err := s.clusterToDestroy(ctx, r)
	if err != nil || c == nil {
		return err
	}
	var deleting []string
	for _, a := range s.wantedAddons() {
		_, err := s.d.AWS.EKS.DeleteAddon(ctx, &eks.DeleteAddonInput{ClusterName: aws.String(s.clusterName()), AddonName: aws.String(a.name)})
		if awsx.IsNotFound(err) {
			continue
		}
		if err != nil {
			return awsx.Describe("EKS DeleteAddon "+a.name, err)
		}
		r.Progress("deleting add-on " + a.name)
		deleting = append(deleting, a.name)
	}
	errs := make([]error, len(deleting))
	var wg sync.WaitGroup
	for i, name := range deleting {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wait := s.d.Opts.Wait.For(addonDeletedWait)
			waiter := eks.NewAddonDeletedWaiter(s.d.AWS.EKS, func(o *eks.AddonDeletedWaiterOptions) {
				o.MinDelay, o.MaxDelay = wait.MinDelay, wait.MaxDelay
				o.Retryable = awsx.Watch(r, "add-on "+name+" to be deleted", addonStatus, o.Retryable)
			})
			in := &eks.DescribeAddonInput{ClusterName: aws.String(s.clusterName()), AddonName: aws.String(name)}
			if err := waiter.Wait(ctx, in, wait.Timeout); err != nil {
				errs[i] = fmt.Errorf("waiting for EKS add-on %s to be deleted: %w", name, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
