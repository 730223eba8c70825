package eks

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	api "github.com/weaveworks/eksctl/pkg/apis/eksctl.io/v1alpha5"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/eksupdate"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
	"github.com/coderctl/coderctl/internal/state"
)

// Waiting for the control plane: the SDK waiters' own poll delays, and
// bounds well above EKS's usual 8-16 minutes.
var (
	clusterActiveWait  = awsx.WaitPolicy{MinDelay: 30 * time.Second, MaxDelay: 120 * time.Second, Timeout: 40 * time.Minute}
	clusterDeletedWait = awsx.WaitPolicy{MinDelay: 30 * time.Second, MaxDelay: 120 * time.Second, Timeout: 30 * time.Minute}
)

const (
	// roleReadyTimeout bounds retrying CreateCluster while a new IAM role
	// propagates (EKS answers "role cannot be assumed" meanwhile).
	roleReadyTimeout = 3 * time.Minute
	// sgDeleteTimeout bounds retrying the shared group's deletion while the
	// deleted control plane's network interfaces linger.
	sgDeleteTimeout = 15 * time.Minute
)

// clusterWant is the control plane cluster-config.yaml asks for.
type clusterWant struct {
	version         string
	public, private bool
	publicCIDRs     []string
	logTypes        []string // sorted
	// keyARN is secretsEncryption.keyARN ("" for none).
	keyARN string
	// retention is cloudWatch.clusterLogging.logRetentionInDays (0: keep
	// whatever the log group has).
	retention int32
}

func (s *stage) want() clusterWant {
	cfg := s.d.Cluster
	w := clusterWant{version: cfg.Metadata.Version, public: true}
	if se := cfg.SecretsEncryption; se != nil {
		w.keyARN = se.KeyARN
	}
	if cw := cfg.CloudWatch; cw != nil && cw.ClusterLogging != nil {
		w.retention = int32(cw.ClusterLogging.LogRetentionInDays) //nolint:gosec // eksctl allows at most 3653
	}
	if vpc := cfg.VPC; vpc != nil {
		if ce := vpc.ClusterEndpoints; ce != nil {
			w.public, w.private = aws.ToBool(ce.PublicAccess), aws.ToBool(ce.PrivateAccess)
		}
		w.publicCIDRs = slices.Clone(vpc.PublicAccessCIDRs)
		sort.Strings(w.publicCIDRs)
	}
	w.logTypes = wantedLogTypes(cfg)
	return w
}

// wantedLogTypes expands eksctl's "all" and "*" and sorts the types.
func wantedLogTypes(cfg *api.ClusterConfig) []string {
	if cfg.CloudWatch == nil || cfg.CloudWatch.ClusterLogging == nil {
		return nil
	}
	set := map[string]bool{}
	for _, t := range cfg.CloudWatch.ClusterLogging.EnableTypes {
		if t == "all" || t == "*" {
			for _, all := range api.SupportedCloudWatchClusterLogTypes() {
				set[all] = true
			}
			continue
		}
		set[t] = true
	}
	return slices.Sorted(maps.Keys(set))
}

// describeCluster returns the cluster, nil when it does not exist. A
// cluster of that name not tagged for this deployment is an error.
func (s *stage) describeCluster(ctx context.Context) (*ekstypes.Cluster, error) {
	out, err := s.d.AWS.EKS.DescribeCluster(ctx, &eks.DescribeClusterInput{Name: aws.String(s.clusterName())})
	if awsx.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, awsx.Describe("EKS DescribeCluster "+s.clusterName(), err)
	}
	if !s.ownedBy(out.Cluster.Tags) {
		return nil, s.foreignError("EKS cluster", s.clusterName())
	}
	return out.Cluster, nil
}

// networkOutputs are the network stage's outputs the cluster is built in.
type networkOutputs struct {
	vpcID           string
	private, public []string
}

// network reads the network stage's outputs; a missing one is an error
// that names the stage to run first.
func (s *stage) network() (networkOutputs, error) {
	var n networkOutputs
	var err error
	if n.vpcID, err = s.d.Output(names.KeyVPCID, names.StageNetwork); err != nil {
		return n, err
	}
	priv, err := s.d.Output(names.KeyPrivateSubnetIDs, names.StageNetwork)
	if err != nil {
		return n, err
	}
	pub, err := s.d.Output(names.KeyPublicSubnetIDs, names.StageNetwork)
	if err != nil {
		return n, err
	}
	n.private, n.public = state.SplitList(priv), state.SplitList(pub)
	return n, nil
}

// networkRecorded reports whether the network stage has recorded its
// outputs; plan uses it to speak about a network that does not exist yet.
func (s *stage) networkRecorded() bool {
	for _, k := range []string{names.KeyVPCID, names.KeyPrivateSubnetIDs, names.KeyPublicSubnetIDs} {
		if s.d.State.Get(k) == "" {
			return false
		}
	}
	return true
}

// The cluster step.

func (s *stage) planCluster(ctx context.Context) ([]engine.Action, error) {
	w := s.want()
	res := "eks-cluster/" + s.clusterName()
	var acts []engine.Action
	if !s.networkRecorded() {
		acts = append(acts, engine.Action{Kind: engine.Create, Resource: "security-group/" + s.sharedSGName(), Reason: "create in the VPC once the network stage has made it"})
	} else if sg, err := s.findSharedSG(ctx, s.d.State.Get(names.KeyVPCID)); err != nil {
		return nil, err
	} else if sg == "" {
		acts = append(acts, engine.Action{Kind: engine.Create, Resource: "security-group/" + s.sharedSGName(), Reason: "missing: create it in " + s.d.State.Get(names.KeyVPCID)})
	}
	c, err := s.describeCluster(ctx)
	if err != nil {
		return nil, err
	}
	if c == nil {
		acts = append(acts, engine.Action{Kind: engine.Create, Resource: res, Reason: fmt.Sprintf(
			"missing: create Kubernetes %s, endpoint %s, logging %s, %s (about 13 minutes)", w.version, w.endpointWords(), logWords(w.logTypes), encryptionWords(w.keyARN))})
		return append(acts, s.planLogRetention(ctx)...), nil
	}
	drift := s.drift(c, w)
	up, err := s.planUpgrade(ctx, c) // upgrade.go
	if err != nil {
		return nil, err
	}
	acts = append(acts, up...)
	switch {
	case c.Status != ekstypes.ClusterStatusActive:
		acts = append(acts, engine.Action{Kind: engine.Nothing, Resource: res, Reason: fmt.Sprintf("exists, %s: apply waits for it", c.Status)})
	case len(drift) > 0:
		acts = append(acts, engine.Action{Kind: engine.Update, Resource: res, Reason: strings.Join(drift, "; ")})
	case len(up) == 0:
		acts = append(acts, engine.Action{Kind: engine.Nothing, Resource: res, Reason: fmt.Sprintf("ACTIVE, Kubernetes %s, endpoint, logging and secrets encryption as configured%s",
			aws.ToString(c.Version), unmanagedKeyWords(c, w))})
	}
	return append(acts, s.planLogRetention(ctx)...), nil
}

func (w clusterWant) endpointWords() string {
	var words string
	switch {
	case w.public && w.private:
		words = "public and private"
	case w.private:
		words = "private only"
	default:
		words = "public only"
	}
	if w.public && len(w.publicCIDRs) > 0 {
		words += " (public from " + strings.Join(w.publicCIDRs, ",") + ")"
	}
	return words
}

func logWords(types []string) string {
	if len(types) == 0 {
		return "off"
	}
	return strings.Join(types, ",")
}

// drift lists what UpdateClusterConfig and AssociateEncryptionConfig
// would change. The version is not here: the validator refuses a version
// different from the cluster's, and a key different from the cluster's.
func (s *stage) drift(c *ekstypes.Cluster, w clusterWant) []string {
	var out []string
	if d := endpointDrift(c, w); d != "" {
		out = append(out, d)
	}
	if mode := s.accessWant().mode; modeRank[mode] > modeRank[clusterMode(c, mode)] {
		out = append(out, "authentication mode "+string(clusterMode(c, mode))+" to "+string(mode)+" (irreversible: EKS moves it only towards API)")
	}
	if w.keyARN != "" && clusterKey(c) == "" {
		out = append(out, "associate secrets encryption with KMS key "+w.keyARN+
			" (irreversible: EKS can neither remove nor change it afterwards; it takes up to 45 minutes)")
	}
	enable, disable := loggingDrift(c, w)
	if len(enable) > 0 {
		out = append(out, "enable control-plane logging "+strings.Join(enable, ","))
	}
	if len(disable) > 0 {
		out = append(out, "disable control-plane logging "+strings.Join(disable, ","))
	}
	return out
}

// endpointDrift describes how the API endpoint's access differs ("" when
// it does not). Public CIDRs are compared only when the file sets them.
func endpointDrift(c *ekstypes.Cluster, w clusterWant) string {
	vc := c.ResourcesVpcConfig
	if vc == nil {
		return ""
	}
	var diffs []string
	if vc.EndpointPublicAccess != w.public {
		diffs = append(diffs, fmt.Sprintf("public endpoint access %v, want %v", vc.EndpointPublicAccess, w.public))
	}
	if vc.EndpointPrivateAccess != w.private {
		diffs = append(diffs, fmt.Sprintf("private endpoint access %v, want %v", vc.EndpointPrivateAccess, w.private))
	}
	if len(w.publicCIDRs) > 0 {
		have := slices.Clone(vc.PublicAccessCidrs)
		sort.Strings(have)
		if !slices.Equal(have, w.publicCIDRs) {
			diffs = append(diffs, fmt.Sprintf("public access CIDRs %s, want %s", strings.Join(have, ","), strings.Join(w.publicCIDRs, ",")))
		}
	}
	return strings.Join(diffs, "; ")
}

// loggingDrift returns the log types to enable and to disable.
func loggingDrift(c *ekstypes.Cluster, w clusterWant) (enable, disable []string) {
	have := enabledLogTypes(c)
	for _, t := range w.logTypes {
		if !have[t] {
			enable = append(enable, t)
		}
	}
	for t := range have {
		if !slices.Contains(w.logTypes, t) {
			disable = append(disable, t)
		}
	}
	sort.Strings(disable)
	return enable, disable
}

func enabledLogTypes(c *ekstypes.Cluster) map[string]bool {
	have := map[string]bool{}
	if c.Logging == nil {
		return have
	}
	for _, setup := range c.Logging.ClusterLogging {
		if aws.ToBool(setup.Enabled) {
			for _, t := range setup.Types {
				have[string(t)] = true
			}
		}
	}
	return have
}

func loggingRequest(enable, disable []string) *ekstypes.Logging {
	var setups []ekstypes.LogSetup
	for _, group := range []struct {
		types []string
		on    bool
	}{{enable, true}, {disable, false}} {
		if len(group.types) == 0 {
			continue
		}
		lt := make([]ekstypes.LogType, len(group.types))
		for i, t := range group.types {
			lt[i] = ekstypes.LogType(t)
		}
		setups = append(setups, ekstypes.LogSetup{Types: lt, Enabled: aws.Bool(group.on)})
	}
	if len(setups) == 0 {
		return nil
	}
	return &ekstypes.Logging{ClusterLogging: setups}
}

// applyCluster creates or adopts the cluster, waits until it is ACTIVE,
// converges endpoint access and logging, and records its outputs. EKS
// reports the endpoint only once the cluster is ACTIVE, so the outputs
// come after the wait; a run killed while waiting finds the cluster by its
// name (and its tags) and waits again.
func (s *stage) applyCluster(ctx context.Context, r engine.Reporter) error {
	net, err := s.network()
	if err != nil {
		return err
	}
	roleARN, err := s.d.Output(names.KeyClusterRoleARN, Name)
	if err != nil {
		return err
	}
	sg, err := s.ensureSharedSG(ctx, net.vpcID)
	if err != nil {
		return err
	}
	c, err := s.describeCluster(ctx)
	if err != nil {
		return err
	}
	if c == nil {
		if c, err = s.createCluster(ctx, r, net, roleARN, sg); err != nil {
			return err
		}
	}
	if c, err = s.waitActive(ctx, r, c); err != nil {
		return err
	}
	if c, err = s.upgrade(ctx, r, c); err != nil { // upgrade.go
		return err
	}
	if c, err = s.converge(ctx, r, c); err != nil {
		return err
	}
	if err := s.ensureLogRetention(ctx, r); err != nil {
		return err
	}
	return s.recordCluster(c, sg)
}

func (s *stage) recordCluster(c *ekstypes.Cluster, sharedSG string) error {
	kv := map[string]string{}
	for k, v := range map[string]string{
		names.KeyClusterEndpoint:        aws.ToString(c.Endpoint),
		names.KeyClusterSecurityGroupID: clusterSecurityGroup(c, sharedSG),
	} {
		if v != "" && s.d.State.Get(k) != v {
			kv[k] = v
		}
	}
	if len(kv) == 0 {
		return nil
	}
	return s.d.Record(kv)
}

// createCluster calls CreateCluster, retrying while EKS cannot yet assume
// a freshly created role. The client token is tied to the shared security
// group, which a destroy deletes: a re-run after a kill reuses the token,
// a new cluster after a destroy gets a new one.
func (s *stage) createCluster(ctx context.Context, r engine.Reporter, net networkOutputs, roleARN, sg string) (*ekstypes.Cluster, error) {
	w := s.want()
	in := &eks.CreateClusterInput{
		Name:    aws.String(s.clusterName()),
		Version: aws.String(w.version),
		RoleArn: aws.String(roleARN),
		ResourcesVpcConfig: &ekstypes.VpcConfigRequest{
			SubnetIds:             append(slices.Clone(net.private), net.public...),
			SecurityGroupIds:      []string{sg},
			EndpointPublicAccess:  aws.Bool(w.public),
			EndpointPrivateAccess: aws.Bool(w.private),
			PublicAccessCidrs:     w.publicCIDRs,
		},
		Logging:          loggingRequest(w.logTypes, nil),
		EncryptionConfig: encryptionConfig(w.keyARN),
		// accessConfig as eksctl defaults it: access entries and the
		// ConfigMap, whoever runs coderctl the cluster admin (access.go).
		AccessConfig: &ekstypes.CreateAccessConfigRequest{
			AuthenticationMode:                      s.accessWant().mode,
			BootstrapClusterCreatorAdminPermissions: aws.Bool(s.accessWant().bootstrap),
		},
		Tags:               s.tags(s.clusterName()),
		ClientRequestToken: aws.String(s.clientToken("cluster", sg)),
	}
	r.Progress(fmt.Sprintf("creating EKS cluster %s (Kubernetes %s)", s.clusterName(), w.version))
	var created *ekstypes.Cluster
	create := func(ctx context.Context) (bool, string, error) {
		out, err := s.d.AWS.EKS.CreateCluster(ctx, in)
		switch {
		case err == nil:
			created = out.Cluster
			return true, "cluster created", nil
		case awsx.ErrorCode(err) == "ResourceInUseException":
			return true, "cluster exists", nil // created by an earlier call
		case roleNotReady(err):
			return false, "role not yet assumable", nil
		}
		return false, "", awsx.Describe("EKS CreateCluster "+s.clusterName(), err)
	}
	done, _, err := create(ctx)
	if err == nil && !done {
		r.Progress("EKS cannot assume the new cluster role yet (IAM changes take a while to propagate): retrying")
		err = awsx.Poll(ctx, r, "the cluster role to be assumable by EKS", s.d.Opts.Wait, roleReadyTimeout, create)
	}
	if err != nil {
		return nil, err
	}
	if created != nil {
		return created, nil
	}
	c, err := s.describeCluster(ctx)
	if err == nil && c == nil {
		err = fmt.Errorf("EKS cluster %s was created but cannot be found", s.clusterName())
	}
	return c, err
}

// roleNotReady reports EKS's answer while a new IAM role propagates.
func roleNotReady(err error) bool {
	if awsx.ErrorCode(err) != "InvalidParameterException" {
		return false
	}
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "role") && (strings.Contains(msg, "assume") || strings.Contains(msg, "does not exist"))
}

// waitActive waits for the control plane with the SDK's waiter, reporting
// each poll, and turns terminal states into errors that say what to do.
func (s *stage) waitActive(ctx context.Context, r engine.Reporter, c *ekstypes.Cluster) (*ekstypes.Cluster, error) {
	switch c.Status {
	case ekstypes.ClusterStatusActive:
		return c, nil
	case ekstypes.ClusterStatusFailed:
		return nil, fmt.Errorf("EKS cluster %s is FAILED%s: run 'coderctl stage eks destroy', then apply again", s.clusterName(), healthWords(c))
	case ekstypes.ClusterStatusDeleting:
		return nil, fmt.Errorf("EKS cluster %s is being deleted: wait until it is gone, then apply again", s.clusterName())
	}
	wait := s.d.Opts.Wait.For(clusterActiveWait)
	waiter := eks.NewClusterActiveWaiter(s.d.AWS.EKS, func(o *eks.ClusterActiveWaiterOptions) {
		o.MinDelay, o.MaxDelay = wait.MinDelay, wait.MaxDelay
		o.Retryable = awsx.Watch(r, "EKS cluster "+s.clusterName(), clusterStatus, o.Retryable)
	})
	out, err := waiter.WaitForOutput(ctx, &eks.DescribeClusterInput{Name: aws.String(s.clusterName())}, wait.Timeout)
	if err != nil {
		return nil, fmt.Errorf("waiting for EKS cluster %s to be ACTIVE: %w", s.clusterName(), err)
	}
	return out.Cluster, nil
}

func clusterStatus(out *eks.DescribeClusterOutput) string {
	if out.Cluster == nil {
		return "unknown"
	}
	return string(out.Cluster.Status)
}

func healthWords(c *ekstypes.Cluster) string {
	if c.Health == nil || len(c.Health.Issues) == 0 {
		return ""
	}
	var msgs []string
	for _, i := range c.Health.Issues {
		msgs = append(msgs, string(i.Code)+": "+aws.ToString(i.Message))
	}
	return " (" + strings.Join(msgs, "; ") + ")"
}

// converge brings endpoint access, logging and secrets encryption to what
// the file says; EKS takes one update at a time, so they are one call and
// one wait each.
func (s *stage) converge(ctx context.Context, r engine.Reporter, c *ekstypes.Cluster) (*ekstypes.Cluster, error) {
	w := s.want()
	if d := endpointDrift(c, w); d != "" {
		r.Progress("updating endpoint access: " + d)
		if err := s.updateConfig(ctx, r, &eks.UpdateClusterConfigInput{ResourcesVpcConfig: &ekstypes.VpcConfigRequest{
			EndpointPublicAccess: aws.Bool(w.public), EndpointPrivateAccess: aws.Bool(w.private), PublicAccessCidrs: w.publicCIDRs,
		}}); err != nil {
			return nil, err
		}
	}
	if enable, disable := loggingDrift(c, w); len(enable)+len(disable) > 0 {
		r.Progress("updating control-plane logging")
		if err := s.updateConfig(ctx, r, &eks.UpdateClusterConfigInput{Logging: loggingRequest(enable, disable)}); err != nil {
			return nil, err
		}
	}
	if mode := s.accessWant().mode; modeRank[mode] > modeRank[clusterMode(c, mode)] {
		r.Progress("updating authentication mode to " + string(mode))
		if err := s.updateConfig(ctx, r, &eks.UpdateClusterConfigInput{AccessConfig: &ekstypes.UpdateAccessConfigRequest{AuthenticationMode: mode}}); err != nil {
			return nil, err
		}
	}
	if err := s.convergeEncryption(ctx, r, c, w); err != nil {
		return nil, err
	}
	out, err := s.describeCluster(ctx)
	if err == nil && out == nil {
		err = fmt.Errorf("EKS cluster %s disappeared while being updated", s.clusterName())
	}
	return out, err
}

// updateConfig starts one configuration update and waits for it.
func (s *stage) updateConfig(ctx context.Context, r engine.Reporter, in *eks.UpdateClusterConfigInput) error {
	in.Name = aws.String(s.clusterName())
	return s.runUpdate(ctx, r, "UpdateClusterConfig", clusterActiveWait.Timeout, func(ctx context.Context) (*ekstypes.Update, error) {
		out, err := s.d.AWS.EKS.UpdateClusterConfig(ctx, in)
		if err != nil {
			return nil, err
		}
		return out.Update, nil
	})
}

// runUpdate starts a cluster update with start and waits for it.
func (s *stage) runUpdate(ctx context.Context, r engine.Reporter, op string, timeout time.Duration, start func(context.Context) (*ekstypes.Update, error)) error {
	return eksupdate.Run(ctx, r, s.d.AWS.EKS, s.d.Opts.Wait, eksupdate.Target{Cluster: s.clusterName()}, op, timeout, start)
}

// destroyCluster deletes the cluster, waits until it is gone, then
// deletes the shared security group.
func (s *stage) destroyCluster(ctx context.Context, r engine.Reporter) error {
	c, err := s.clusterToDestroy(ctx, r)
	if err != nil {
		return err
	}
	if c != nil {
		if err := s.deleteCluster(ctx, r, c); err != nil {
			return err
		}
	}
	if err := s.d.State.Unset(names.KeyClusterEndpoint, names.KeyClusterSecurityGroupID); err != nil {
		return err
	}
	if err := s.deleteLogGroup(ctx, r); err != nil {
		return err
	}
	return s.deleteSharedSG(ctx, r)
}

// clusterToDestroy is the cluster if it exists and is ours; someone else's
// cluster of the same name is left alone, with a notice.
func (s *stage) clusterToDestroy(ctx context.Context, r engine.Reporter) (*ekstypes.Cluster, error) {
	c, err := s.describeCluster(ctx)
	if isForeign(err) {
		r.Notice(err.Error()+": left alone", nil)
		return nil, nil
	}
	return c, err
}

func (s *stage) deleteCluster(ctx context.Context, r engine.Reporter, c *ekstypes.Cluster) error {
	name := s.clusterName()
	if c.Status != ekstypes.ClusterStatusDeleting {
		r.Progress("deleting EKS cluster " + name)
		_, err := s.d.AWS.EKS.DeleteCluster(ctx, &eks.DeleteClusterInput{Name: aws.String(name)})
		switch {
		case awsx.IsNotFound(err):
			return nil
		case awsx.ErrorCode(err) == "ResourceInUseException":
			return s.inUseError(ctx, err)
		case err != nil:
			return awsx.Describe("EKS DeleteCluster "+name, err)
		}
	}
	wait := s.d.Opts.Wait.For(clusterDeletedWait)
	waiter := eks.NewClusterDeletedWaiter(s.d.AWS.EKS, func(o *eks.ClusterDeletedWaiterOptions) {
		o.MinDelay, o.MaxDelay = wait.MinDelay, wait.MaxDelay
		o.Retryable = awsx.Watch(r, "EKS cluster "+name+" to be deleted", clusterStatus, o.Retryable)
	})
	if err := waiter.Wait(ctx, &eks.DescribeClusterInput{Name: aws.String(name)}, wait.Timeout); err != nil {
		return fmt.Errorf("waiting for EKS cluster %s to be deleted: %w", name, err)
	}
	return nil
}

// inUseError explains EKS's refusal to delete a cluster with node groups.
func (s *stage) inUseError(ctx context.Context, err error) error {
	out, lerr := s.d.AWS.EKS.ListNodegroups(ctx, &eks.ListNodegroupsInput{ClusterName: aws.String(s.clusterName())})
	if lerr == nil && len(out.Nodegroups) > 0 {
		return fmt.Errorf("EKS cluster %s still has node groups (%s): run 'coderctl stage nodegroups destroy' first",
			s.clusterName(), strings.Join(out.Nodegroups, ", "))
	}
	return fmt.Errorf("EKS cluster %s is still in use (node groups or Fargate profiles): delete them first, e.g. 'coderctl stage nodegroups destroy': %w",
		s.clusterName(), err)
}
