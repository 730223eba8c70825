package eks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/fault"
)

// validate checks, read-only and before anything changes, what would
// otherwise fail minutes into the run: bad input (exit 2). Missing network
// outputs are not bad input (the network stage may run in the same `up`);
// the cluster step reports them.
func (s *stage) validate(ctx context.Context) error {
	for _, check := range []func(context.Context) error{
		s.validateVersion, s.validateNames, s.validateKeyARN, s.validateExisting, s.validateKey, s.validateAddons, s.validateAddonValues, s.validateAccess,
	} {
		if err := check(ctx); err != nil {
			return err
		}
	}
	return nil
}

// validateVersion repeats the config loader's check, since Deps may come
// from elsewhere than LoadCluster.
func (s *stage) validateVersion(context.Context) error {
	v := s.d.Cluster.Metadata.Version
	if !slices.Contains(config.SupportedEKSVersions(), v) {
		return fault.Input(s.d.ConfigPath, "metadata.version", "use one of "+strings.Join(config.SupportedEKSVersions(), ", "),
			"%q is not a Kubernetes version EKS supports", v)
	}
	return nil
}

// validateNames: IAM role names are at most 64 characters, EKS cluster
// names 100, so a long CLUSTER_NAME fails only at the roles.
func (s *stage) validateNames(context.Context) error {
	longest := s.clusterRoleName()
	if len(s.ebsCSIRoleName()) > len(longest) {
		longest = s.ebsCSIRoleName()
	}
	if len(longest) > maxIAMNameLen {
		maxName := maxIAMNameLen - (len(longest) - len(s.clusterName()))
		source, field := s.clusterNameField()
		return fault.Input(source, field, fmt.Sprintf("use at most %d characters", maxName),
			"%q is too long: the IAM role %s would exceed IAM's %d characters", s.clusterName(), longest, maxIAMNameLen)
	}
	return nil
}

// clusterNameField is where the cluster name was set: metadata.name in
// cluster-config.yaml, or CLUSTER_NAME in the env file or environment.
func (s *stage) clusterNameField() (source, field string) {
	return s.d.Inputs.Origin(config.KeyClusterName)
}

// validateExisting refuses resources of our names that belong to someone
// else, and a version change EKS would refuse (validateUpgrade).
func (s *stage) validateExisting(ctx context.Context) error {
	if s.d.AWS == nil {
		return nil
	}
	source, field := s.clusterNameField()
	c, err := s.describeCluster(ctx)
	if isForeign(err) {
		return fault.Input(source, field, "choose another cluster name, or delete that cluster",
			"an EKS cluster named %s already exists in %s and is not this deployment's", s.clusterName(), s.d.Region())
	}
	if have, want := clusterKeyOf(c), s.want().keyARN; have != "" && want != "" && have != want {
		return fault.Input(s.d.ConfigPath, "secretsEncryption.keyARN", "set it to \""+have+"\": EKS cannot change the key of a cluster whose secrets are encrypted",
			"cluster %s encrypts secrets with KMS key %s, the file says %s", s.clusterName(), have, want)
	}
	if err := s.validateUpgrade(ctx, c); err != nil { // upgrade.go
		return err
	}
	for _, name := range []string{s.clusterRoleName(), s.ebsCSIRoleName()} {
		_, err := s.role(name, "", nil, "", "").Read(ctx, s.d.AWS.IAM)
		if isForeign(err) {
			return fault.Input(source, field, "choose another cluster name, or delete the role",
				"IAM role %s already exists and is not this deployment's", name)
		}
		var elsewhere *awsx.RoleInOtherRegionError
		if errors.As(err, &elsewhere) {
			return fault.Input(source, field, "choose a cluster name no deployment uses in another region of this account",
				"IAM role %s belongs to deployment %s in %s: IAM role names are account-wide", name, elsewhere.Deployment, elsewhere.OtherRegion)
		}
	}
	return nil
}

// validateAddons asks EKS which versions of each add-on exist for the
// configured Kubernetes version: an unknown add-on name or version would
// otherwise fail after the 13-minute cluster creation. When none of the
// add-ons has a version, the Kubernetes version itself is not offered in
// the region. Errors of the query itself (permissions) are not bad input:
// apply reports them.
func (s *stage) validateAddons(ctx context.Context) error {
	if s.d.AWS == nil {
		return nil
	}
	k8s := s.d.Cluster.Metadata.Version
	wanted := s.wantedAddons()
	missing := 0
	var firstMissing error
	for _, a := range wanted {
		versions, err := s.addonVersions(ctx, a.name, k8s)
		if err != nil {
			return nil
		}
		field := a.field
		if field == "" {
			field = "addons"
		}
		switch {
		case len(versions) == 0:
			missing++
			if firstMissing == nil {
				firstMissing = fault.Input(s.d.ConfigPath, field+".name", "use an add-on EKS offers, e.g. "+strings.Join(defaultAddons(), ", "),
					"EKS offers no add-on %q for Kubernetes %s in %s", a.name, k8s, s.d.Region())
			}
		case a.version != "" && a.version != "latest" && !slices.Contains(versions, a.version):
			return fault.Input(s.d.ConfigPath, field+".version", fmt.Sprintf("use \"latest\", leave it out, or one of %s", strings.Join(firstN(versions, 3), ", ")),
				"add-on %s has no version %q for Kubernetes %s", a.name, a.version, k8s)
		}
	}
	if missing > 0 && missing == len(wanted) && len(wanted) > 1 {
		return fault.Input(s.d.ConfigPath, "metadata.version", "choose a version EKS offers in "+s.d.Region(),
			"EKS in %s offers none of the add-ons for Kubernetes %s", s.d.Region(), k8s)
	}
	return firstMissing
}

func firstN(list []string, n int) []string {
	if len(list) > n {
		return list[:n]
	}
	return list
}
