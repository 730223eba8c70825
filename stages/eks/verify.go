package eks

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	"k8s.io/apimachinery/pkg/version"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
)

// apiServerTimeout bounds the API server check: an unreachable endpoint
// (private only, or moto's, which has no server behind it) must not hang
// the checkpoint.
const apiServerTimeout = 20 * time.Second

const applyHint = "run 'coderctl stage eks apply'"

// verify is the stage's checkpoint: every check reads, none changes.
func (s *stage) verify(ctx context.Context) []engine.Check {
	checks := []engine.Check{s.checkRole(ctx, "cluster-role", s.clusterRole())}
	c, err := s.describeCluster(ctx)
	switch {
	case err != nil:
		return append(checks, engine.Failf("cluster-active", "", "%v", err))
	case c == nil:
		return append(checks, engine.Failf("cluster-active", applyHint, "EKS cluster %s not found in %s", s.clusterName(), s.d.Region()))
	}
	checks = append(checks, checkActive(c), s.checkVersion(c), s.checkEndpoint(c), s.checkLogging(c), s.checkEncryption(c), s.checkSecurityGroup(ctx, c))
	if check, ok := s.checkLogRetention(ctx); ok {
		checks = append(checks, check)
	}
	checks = append(checks, s.checkAccessEntries(ctx))
	checks = append(checks, s.checkOIDC(ctx, c)...)
	checks = append(checks, s.checkAddons(ctx)...)
	return append(checks, s.checkAPIServer(ctx))
}

func checkActive(c *ekstypes.Cluster) engine.Check {
	if c.Status != ekstypes.ClusterStatusActive {
		return engine.Failf("cluster-active", applyHint+" (it waits for the cluster)", "EKS cluster %s is %s%s", aws.ToString(c.Name), c.Status, healthWords(c))
	}
	return engine.Passf("cluster-active", "EKS cluster %s is ACTIVE", aws.ToString(c.Name))
}

func (s *stage) checkVersion(c *ekstypes.Cluster) engine.Check {
	want, have := s.d.Cluster.Metadata.Version, aws.ToString(c.Version)
	if have != want {
		return engine.Failf("cluster-version", "set metadata.version in "+s.d.ConfigPath+" to the cluster's version, or upgrade the cluster",
			"Kubernetes %s, the file says %s", have, want)
	}
	return engine.Passf("cluster-version", "Kubernetes %s as configured", have)
}

func (s *stage) checkEndpoint(c *ekstypes.Cluster) engine.Check {
	w := s.want()
	if d := endpointDrift(c, w); d != "" {
		return engine.Failf("endpoint-access", applyHint+" to converge it", "%s", d)
	}
	return engine.Passf("endpoint-access", "%s access to %s", w.endpointWords(), aws.ToString(c.Endpoint))
}

func (s *stage) checkLogging(c *ekstypes.Cluster) engine.Check {
	enable, disable := loggingDrift(c, s.want())
	if len(enable)+len(disable) > 0 {
		var parts []string
		if len(enable) > 0 {
			parts = append(parts, "not enabled: "+strings.Join(enable, ","))
		}
		if len(disable) > 0 {
			parts = append(parts, "enabled but not configured: "+strings.Join(disable, ","))
		}
		return engine.Failf("control-plane-logging", applyHint+" to converge it", "%s", strings.Join(parts, "; "))
	}
	return engine.Passf("control-plane-logging", "%s", logWords(s.want().logTypes))
}

// checkSecurityGroup proves the recorded cluster security group exists.
func (s *stage) checkSecurityGroup(ctx context.Context, c *ekstypes.Cluster) engine.Check {
	id := s.d.State.Get(names.KeyClusterSecurityGroupID)
	if id == "" {
		return engine.Failf("cluster-security-group", applyHint, "%s is not recorded in %s", names.KeyClusterSecurityGroupID, s.d.State.Path())
	}
	if want := clusterSecurityGroup(c, id); want != id {
		return engine.Failf("cluster-security-group", applyHint+" to record it", "%s is %s, EKS reports %s", names.KeyClusterSecurityGroupID, id, want)
	}
	if _, err := s.d.AWS.EC2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{id}}); err != nil {
		return engine.Failf("cluster-security-group", applyHint, "security group %s: %v", id, err)
	}
	source := "EKS's cluster security group"
	if clusterSecurityGroup(c, "") == "" {
		source = "coderctl's " + s.sharedSGName() + " (EKS reports no cluster security group)"
	}
	return engine.Passf("cluster-security-group", "%s is %s", id, source)
}

// checkOIDC proves the OIDC provider matches the cluster's issuer and that
// the EBS CSI role trusts exactly its service account through it.
func (s *stage) checkOIDC(ctx context.Context, c *ekstypes.Cluster) []engine.Check {
	providerARN, issuer, err := providerFor(c)
	if err != nil {
		return []engine.Check{engine.Failf("oidc-provider", "", "%v", err)}
	}
	var oidc engine.Check
	p, err := s.readProvider(ctx, providerARN)
	switch {
	case err != nil:
		oidc = engine.Failf("oidc-provider", "", "%v", err)
	case p == nil:
		oidc = engine.Failf("oidc-provider", applyHint, "no IAM OIDC provider for issuer %s", issuer)
	case strings.TrimSuffix(strings.TrimPrefix(aws.ToString(p.Url), "https://"), "/") != strings.TrimSuffix(strings.TrimPrefix(issuer, "https://"), "/"):
		oidc = engine.Failf("oidc-provider", applyHint, "provider URL %s is not the issuer %s", aws.ToString(p.Url), issuer)
	case !slices.Contains(p.ClientIDList, awsx.STSAudience):
		oidc = engine.Failf("oidc-provider", applyHint, "provider lacks audience %s", awsx.STSAudience)
	case s.d.State.Get(names.KeyOIDCProviderARN) != providerARN:
		oidc = engine.Failf("oidc-provider", applyHint+" to record it", "%s is %q, the issuer's provider is %s", names.KeyOIDCProviderARN, s.d.State.Get(names.KeyOIDCProviderARN), providerARN)
	default:
		oidc = engine.Passf("oidc-provider", "%s matches issuer %s", providerARN, issuer)
	}
	r, err := s.ebsCSIRole(providerARN)
	if err != nil {
		return []engine.Check{oidc, engine.Failf("ebs-csi-role", "", "%v", err)}
	}
	return []engine.Check{oidc, s.checkRole(ctx, "ebs-csi-role", r)}
}

// checkRole proves a role exists with its trust policy and policy.
func (s *stage) checkRole(ctx context.Context, name string, r role) engine.Check {
	st, err := r.Read(ctx, s.d.AWS.IAM)
	switch {
	case err != nil:
		return engine.Failf(name, "", "%v", err)
	case st == nil:
		return engine.Failf(name, applyHint, "IAM role %s not found", r.Name)
	case !st.TrustOK:
		return engine.Failf(name, applyHint+" to rewrite it", "IAM role %s's trust policy is not the one coderctl sets", r.Name)
	case len(st.Missing) > 0:
		return engine.Failf(name, applyHint+" to attach it", "IAM role %s lacks %s", r.Name, r.policy())
	}
	return engine.Passf(name, "%s with %s", st.ARN, r.policy())
}

// checkAddons: each add-on ACTIVE. coredns and the CSI drivers need nodes:
// before the node groups exist they are a warning, after, a failure.
func (s *stage) checkAddons(ctx context.Context) []engine.Check {
	hasNodes, err := s.hasNodeGroups(ctx)
	if err != nil {
		return []engine.Check{engine.Failf("addons", "", "%v", err)}
	}
	var out []engine.Check
	for _, a := range s.wantedAddons() {
		name := "addon-" + a.name
		cur, err := s.describeAddon(ctx, a.name)
		role := s.roleFor(a, s.d.State.Get(names.KeyEBSCSIRoleARN))
		switch {
		case err != nil:
			out = append(out, engine.Failf(name, "", "%v", err))
		case cur == nil:
			out = append(out, engine.Failf(name, applyHint, "add-on %s not installed", a.name))
		case role != "" && aws.ToString(cur.ServiceAccountRoleArn) != role:
			out = append(out, engine.Failf(name, applyHint+" to converge it", "runs with service account role %q, want %s", aws.ToString(cur.ServiceAccountRoleArn), role))
		case valuesDrift(aws.ToString(cur.ConfigurationValues), a.values) != "":
			out = append(out, engine.Failf(name, applyHint+" to converge it", "%s", valuesDrift(aws.ToString(cur.ConfigurationValues), a.values)))
		case cur.Status == ekstypes.AddonStatusActive:
			out = append(out, engine.Passf(name, "ACTIVE, version %s", aws.ToString(cur.AddonVersion)))
		case needsNodes(a.name) && !hasNodes:
			out = append(out, engine.Warnf(name, "run 'coderctl stage nodegroups apply'", "%s: it becomes ACTIVE once node groups exist", cur.Status))
		default:
			out = append(out, engine.Failf(name, "see the add-on's health in the EKS console", "%s%s", cur.Status, addonHealth(cur)))
		}
	}
	return out
}

// checkAPIServer asks the API server for its version. An API server that
// cannot be reached is a warning, not a failure: a private-only endpoint
// is unreachable from outside the VPC by design, and moto has no server
// behind its endpoints.
func (s *stage) checkAPIServer(ctx context.Context) engine.Check {
	const name = "api-server"
	hint := "pass --kubeconfig (or set CODERCTL_KUBECONFIG) if the endpoint is not reachable from here"
	if s.d.Kube == nil {
		return engine.Warnf(name, hint, "no Kubernetes access in this run: not checked")
	}
	ctx, cancel := context.WithTimeout(ctx, apiServerTimeout)
	defer cancel()
	client, _, err := s.d.Kube(ctx)
	if err != nil {
		return engine.Warnf(name, hint, "no client: %v", err)
	}
	info, err := serverVersion(ctx, client.Discovery())
	if err != nil {
		return engine.Warnf(name, hint, "not answering: %v", err)
	}
	want := s.d.Cluster.Metadata.Version
	if have := info.Major + "." + strings.TrimSuffix(info.Minor, "+"); have != want {
		return engine.Warnf(name, "check that --kubeconfig names this deployment's cluster",
			"answers with Kubernetes %s, the file says %s", info.GitVersion, want)
	}
	return engine.Passf(name, "answers, Kubernetes %s", info.GitVersion)
}

// serverVersion reads /version with the context when the client allows.
func serverVersion(ctx context.Context, d interface{ ServerVersion() (*version.Info, error) }) (*version.Info, error) {
	if withCtx, ok := d.(interface {
		ServerVersionWithContext(context.Context) (*version.Info, error)
	}); ok {
		return withCtx.ServerVersionWithContext(ctx)
	}
	return d.ServerVersion()
}
