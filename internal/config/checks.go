package config

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	api "github.com/weaveworks/eksctl/pkg/apis/eksctl.io/v1alpha5"

	"github.com/coderctl/coderctl/internal/fault"
)

// SupportedEKSVersions are the Kubernetes versions coderctl accepts in
// metadata.version: the EKS versions in standard or extended support that
// eksctl v0.230.0 (whose types we decode with) knows, and whose default
// AMI (AL2023) the node groups use. Update this one list when EKS releases
// or retires a version.
func SupportedEKSVersions() []string {
	return []string{"1.30", "1.31", "1.32", "1.33", "1.34", "1.35"}
}

// The shapes of AWS names coderctl checks before any API call.
var (
	clusterNameRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$`)
	nodeGroupNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$`)
	regionRE        = regexp.MustCompile(`^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]+$`)
	vpcIDRE         = regexp.MustCompile(`^vpc-([0-9a-f]{8}|[0-9a-f]{17})$`)
	instanceTypeRE  = regexp.MustCompile(`^[a-z][a-z0-9-]*\.[a-z0-9-]+$`)
)

// taintEffects are the Kubernetes spellings eksctl's taints take.
var taintEffects = []string{"NoSchedule", "PreferNoSchedule", "NoExecute"}

// natModes are eksctl's vpc.nat.gateway values.
var natModes = []string{api.ClusterSingleNAT, api.ClusterHighlyAvailableNAT, api.ClusterDisableNAT}

// minRootVolumeGiB is the size of the EKS-optimized AMI's root snapshot; a
// smaller volume cannot be launched from it.
const minRootVolumeGiB = 20

// maxRootVolumeGiB is the largest gp3 or gp2 volume EBS creates (16 TiB).
// Larger numbers used to reach the API, or wrap around in its int32 field.
const maxRootVolumeGiB = 16384

// maxNodesPerGroup is EKS's quota "Nodes per managed node group". Sizes are
// int32 in the EKS API: a larger number would be sent wrapped or refused
// minutes into the run.
const maxNodesPerGroup = 450

// checkCluster runs coderctl's own checks on the decoded file, before eksctl
// fills in defaults, so that messages speak about what the user wrote.
func checkCluster(name string, cfg *api.ClusterConfig) error {
	for _, check := range []func(string, *api.ClusterConfig) error{
		checkMetadata, checkZones, checkVPC, checkOIDC, checkNodeGroupKinds, checkManagedNodeGroups,
	} {
		if err := check(name, cfg); err != nil {
			return err
		}
	}
	return nil
}

func checkMetadata(name string, cfg *api.ClusterConfig) error {
	md := cfg.Metadata
	if md == nil {
		return fault.Input(name, "metadata", "set metadata.name and metadata.region", "missing")
	}
	switch {
	case md.Name == "":
		return fault.Input(name, "metadata.name", "the EKS cluster name, e.g. name: coder-prod", "missing")
	case !clusterNameRE.MatchString(md.Name):
		return fault.Input(name, "metadata.name", "use letters, digits, '-' and '_', starting with a letter or digit, at most 100 characters",
			"%q is not a valid EKS cluster name", md.Name)
	case md.Region == "":
		return fault.Input(name, "metadata.region", "e.g. region: us-west-2", "missing")
	case !isRegion(md.Region):
		return fault.Input(name, "metadata.region", "e.g. region: us-west-2", "%q does not look like an AWS region", md.Region)
	case md.Version != "" && !slices.Contains(SupportedEKSVersions(), md.Version):
		return fault.Input(name, "metadata.version", "use one of "+strings.Join(SupportedEKSVersions(), ", "),
			"%q is not a supported EKS version", md.Version)
	}
	return nil
}

func isRegion(s string) bool { return regionRE.MatchString(s) }

// checkZones: eksctl accepts duplicates and zones of any region; EKS then
// fails minutes later. Zones must be distinct and belong to the region.
func checkZones(name string, cfg *api.ClusterConfig) error {
	region := cfg.Metadata.Region
	seen := map[string]bool{}
	for i, az := range cfg.AvailabilityZones {
		field := fmt.Sprintf("availabilityZones[%d]", i)
		if !isZoneOf(az, region) {
			return fault.Input(name, field, fmt.Sprintf("zones of %[1]s are named %[1]sa, %[1]sb, %[1]sc, ...", region),
				"%q is not an availability zone of region %s", az, region)
		}
		if seen[az] {
			return fault.Input(name, field, "list distinct zones; coderctl puts one public and one private subnet in each",
				"%s is listed twice", az)
		}
		seen[az] = true
	}
	if n := len(cfg.AvailabilityZones); n > 0 && n < api.MinRequiredAvailabilityZones {
		return fault.Input(name, "availabilityZones", fmt.Sprintf("list 3 zones of %s; EKS needs at least 2", region),
			"only %d zone listed", n)
	}
	return nil
}

// isZoneOf reports whether az is a zone name of region: the region and one letter.
func isZoneOf(az, region string) bool {
	suffix, ok := strings.CutPrefix(az, region)
	return ok && len(suffix) == 1 && suffix[0] >= 'a' && suffix[0] <= 'z'
}

func checkVPC(name string, cfg *api.ClusterConfig) error {
	vpc := cfg.VPC
	if vpc == nil {
		return nil
	}
	if vpc.CIDR != nil {
		if err := checkVPCCIDR(name, vpc.CIDR.String()); err != nil {
			return err
		}
	}
	if vpc.ID != "" {
		if !vpcIDRE.MatchString(vpc.ID) {
			return fault.Input(name, "vpc.id", "e.g. vpc-0123456789abcdef0", "%q is not a VPC ID", vpc.ID)
		}
		if !cfg.HasAnySubnets() {
			return fault.Input(name, "vpc.subnets", "list the existing VPC's subnets under vpc.subnets.private and vpc.subnets.public, keyed by availability zone",
				"missing while vpc.id is set")
		}
	}
	// eksctl's create command (not its validation package) refuses this pair.
	if cfg.HasAnySubnets() && len(cfg.AvailabilityZones) > 0 {
		return fault.Input(name, "availabilityZones", "with existing subnets, the zones are the subnets' zones: remove availabilityZones",
			"cannot be set together with vpc.subnets")
	}
	if vpc.NAT != nil && vpc.NAT.Gateway != nil && *vpc.NAT.Gateway != "" && !slices.Contains(natModes, *vpc.NAT.Gateway) {
		return fault.Input(name, "vpc.nat.gateway", oneOfHint(*vpc.NAT.Gateway, natModes),
			"%q is not a NAT mode", *vpc.NAT.Gateway)
	}
	return nil
}

// checkOIDC: the eks stage always creates the cluster's IAM OIDC provider,
// because the EBS CSI driver, the cluster-autoscaler and Coder's secrets
// use IAM roles for service accounts. A file asking for none would not get
// what it says.
func checkOIDC(name string, cfg *api.ClusterConfig) error {
	if cfg.IAM != nil && cfg.IAM.WithOIDC != nil && !*cfg.IAM.WithOIDC {
		return fault.Input(name, "iam.withOIDC", "set withOIDC: true or remove it",
			"coderctl always creates the IAM OIDC provider (the EBS CSI driver, the cluster-autoscaler and Coder's secrets use IAM roles for service accounts)")
	}
	return nil
}

// privateRanges are the RFC 1918 blocks a VPC should be carved from.
var privateRanges = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
}

// checkVPCCIDR wants a private IPv4 block between /16 (the largest AWS
// allows) and /24 (the smallest that still leaves room for a public and a
// private subnet in each of three zones).
func checkVPCCIDR(name, cidr string) error {
	p, err := netip.ParsePrefix(cidr)
	if err != nil || !p.Addr().Is4() {
		return fault.Input(name, "vpc.cidr", "e.g. cidr: 10.0.0.0/16", "%q is not an IPv4 CIDR block", cidr)
	}
	const hint = "use a block inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16 between /16 and /24, e.g. 10.0.0.0/16"
	switch {
	case p.Bits() < 16:
		return fault.Input(name, "vpc.cidr", hint, "%s is larger than AWS allows for a VPC (/16 at most)", p)
	case p.Bits() > 24:
		return fault.Input(name, "vpc.cidr", hint, "%s is too small for public and private subnets in three zones", p)
	case !slices.ContainsFunc(privateRanges, func(r netip.Prefix) bool { return r.Contains(p.Addr()) && r.Bits() <= p.Bits() }):
		return fault.Input(name, "vpc.cidr", hint, "%s is not a private (RFC 1918) range", p)
	}
	return nil
}

// checkNodeGroupKinds wants managed node groups; self-managed ones
// (nodeGroups) are refused with the other fields coderctl does not act on.
func checkNodeGroupKinds(name string, cfg *api.ClusterConfig) error {
	if len(cfg.ManagedNodeGroups) == 0 {
		return fault.Input(name, "managedNodeGroups", "list system, coder-coderd, coder-provisioner and coder-workspace as in the shipped cluster-config.yaml",
			"no node groups defined")
	}
	return nil
}

func checkManagedNodeGroups(name string, cfg *api.ClusterConfig) error {
	seen := map[string]int{}
	for i, ng := range cfg.ManagedNodeGroups {
		path := fmt.Sprintf("managedNodeGroups[%d]", i)
		if ng.NodeGroupBase == nil {
			return fault.Input(name, path+".name", "e.g. name: coder-workspace", "missing")
		}
		if first, dup := seen[ng.Name]; dup && ng.Name != "" {
			return fault.Input(name, path+".name", "give each node group its own name",
				"%q is already the name of managedNodeGroups[%d]", ng.Name, first)
		}
		seen[ng.Name] = i
		if err := checkManagedNodeGroup(name, path, ng); err != nil {
			return err
		}
	}
	return nil
}

// The nodegroups stage runs one step per node group, named after it, beside
// these fixed steps; a group may not take their names.
const (
	NodeGroupsRoleStep   = "node-role"
	NodeGroupsTaintsStep = "taints"
)

func checkManagedNodeGroup(name, path string, ng *api.ManagedNodeGroup) error {
	switch {
	case ng.Name == "":
		return fault.Input(name, path+".name", "e.g. name: coder-workspace", "missing")
	case !nodeGroupNameRE.MatchString(ng.Name):
		return fault.Input(name, path+".name", "use letters, digits, '-' and '_', starting with a letter or digit, at most 63 characters",
			"%q is not a valid node group name", ng.Name)
	case ng.Name == NodeGroupsRoleStep || ng.Name == NodeGroupsTaintsStep:
		return fault.Input(name, path+".name", "pick another name, e.g. coder-"+ng.Name,
			"%q is reserved: coderctl's nodegroups stage has a step of that name", ng.Name)
	}
	if err := checkInstanceType(name, path, ng); err != nil {
		return err
	}
	if err := checkScaling(name, path, ng.ScalingConfig); err != nil {
		return err
	}
	if ng.VolumeSize != nil && *ng.VolumeSize < minRootVolumeGiB {
		return fault.Input(name, path+".volumeSize", fmt.Sprintf("use at least %d (GiB)", minRootVolumeGiB),
			"%d GiB is smaller than the EKS-optimized AMI's root snapshot", *ng.VolumeSize)
	}
	if ng.VolumeSize != nil && *ng.VolumeSize > maxRootVolumeGiB {
		return fault.Input(name, path+".volumeSize", fmt.Sprintf("use at most %d (GiB), the largest gp3/gp2 EBS volume", maxRootVolumeGiB),
			"%d GiB is larger than EBS allows", *ng.VolumeSize)
	}
	return checkTaints(name, path, ng.Taints)
}

func checkInstanceType(name, path string, ng *api.ManagedNodeGroup) error {
	switch {
	case ng.InstanceType == "":
		return fault.Input(name, path+".instanceType", "e.g. instanceType: m7i.xlarge", "missing")
	case !instanceTypeRE.MatchString(ng.InstanceType):
		return fault.Input(name, path+".instanceType", "e.g. instanceType: m7i.xlarge", "%q does not look like an EC2 instance type", ng.InstanceType)
	}
	return nil
}

// checkScaling compares the sizes the user wrote. eksctl fills in missing
// ones later, and its own messages name CLI flags (--nodes-max).
func checkScaling(name, path string, sc *api.ScalingConfig) error {
	if sc == nil {
		return nil
	}
	sizes := []struct {
		field string
		v     *int
	}{{"minSize", sc.MinSize}, {"maxSize", sc.MaxSize}, {"desiredCapacity", sc.DesiredCapacity}}
	for _, s := range sizes {
		switch {
		case s.v != nil && *s.v < 0:
			return fault.Input(name, path+"."+s.field, "use 0 or more", "%d is negative", *s.v)
		case s.v != nil && *s.v > maxNodesPerGroup:
			return fault.Input(name, path+"."+s.field,
				fmt.Sprintf("EKS allows %d nodes per managed node group (its default quota); split the capacity over more groups", maxNodesPerGroup),
				"%d is more nodes than one managed node group can have", *s.v)
		}
	}
	minSize, maxSize, desired := sc.MinSize, sc.MaxSize, sc.DesiredCapacity
	switch {
	case maxSize != nil && *maxSize < 1:
		return fault.Input(name, path+".maxSize", "EKS needs a maxSize of at least 1", "%d leaves the group without nodes", *maxSize)
	case minSize != nil && maxSize != nil && *minSize > *maxSize:
		return fault.Input(name, path+".minSize", "lower minSize or raise maxSize", "%d is greater than maxSize %d", *minSize, *maxSize)
	case desired != nil && maxSize != nil && *desired > *maxSize:
		return fault.Input(name, path+".maxSize", "raise maxSize or lower desiredCapacity", "%d is less than desiredCapacity %d", *maxSize, *desired)
	case desired != nil && minSize != nil && *desired < *minSize:
		return fault.Input(name, path+".desiredCapacity", "raise desiredCapacity or lower minSize", "%d is less than minSize %d", *desired, *minSize)
	}
	return nil
}

func checkTaints(name, path string, taints []api.NodeGroupTaint) error {
	for j, t := range taints {
		tp := fmt.Sprintf("%s.taints[%d]", path, j)
		if t.Key == "" {
			return fault.Input(name, tp+".key", "e.g. key: coder/node-type", "missing")
		}
		if msg, hint := taintEffectProblem(string(t.Effect)); msg != "" {
			return fault.Input(name, tp+".effect", hint, "%s", msg)
		}
	}
	return nil
}

// taintEffectProblem explains what is wrong with a taint effect, or returns
// "" when it is one of the Kubernetes spellings.
func taintEffectProblem(effect string) (msg, hint string) {
	if slices.Contains(taintEffects, effect) {
		return "", ""
	}
	if effect == "" {
		return "missing", "use NoSchedule, PreferNoSchedule or NoExecute"
	}
	squashed := strings.NewReplacer("_", "", "-", "", " ", "").Replace(strings.ToLower(effect))
	for _, e := range taintEffects {
		if squashed == strings.ToLower(e) {
			return fmt.Sprintf("%q is the EKS API spelling", effect), "use the Kubernetes spelling " + e
		}
	}
	return fmt.Sprintf("%q is not a taint effect", effect), oneOfHint(effect, taintEffects)
}

// oneOfHint lists the valid values, leading with the likely intended one.
func oneOfHint(got string, valid []string) string {
	all := "use " + strings.Join(valid[:len(valid)-1], ", ") + " or " + valid[len(valid)-1]
	if s := closest(got, valid); s != "" {
		return fmt.Sprintf("did you mean %s? %s", s, all)
	}
	return all
}
