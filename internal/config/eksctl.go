package config

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"

	api "github.com/weaveworks/eksctl/pkg/apis/eksctl.io/v1alpha5"

	"github.com/coderctl/coderctl/internal/fault"
)

// applyDefaults fills in what `eksctl create cluster -f` fills in before it
// validates, so that the stages build the cluster eksctl would have built
// from the same file.
func applyDefaults(name string, cfg *api.ClusterConfig) error {
	if cfg.Metadata.Version == "" {
		cfg.Metadata.Version = api.DefaultVersion
	}
	ipv6 := cfg.IPv6Enabled()
	if cfg.VPC == nil {
		cfg.VPC = api.NewClusterVPC(ipv6)
	}
	if cfg.VPC.CIDR == nil && cfg.VPC.ID == "" && !ipv6 {
		cidr := api.DefaultCIDR()
		cfg.VPC.CIDR = &cidr
	}
	if cfg.VPC.NAT == nil && !ipv6 {
		cfg.VPC.NAT = api.DefaultClusterNAT()
	}
	if cfg.VPC.NAT != nil && api.IsEmpty(cfg.VPC.NAT.Gateway) {
		single := api.ClusterSingleNAT
		cfg.VPC.NAT.Gateway = &single
	}
	api.SetClusterEndpointAccessDefaults(cfg.VPC)
	// After the VPC exists: this also defaults VPC fields.
	api.SetClusterConfigDefaults(cfg)
	for i, ng := range cfg.ManagedNodeGroups {
		if err := api.SetManagedNodeGroupDefaults(ng, cfg.Metadata, false); err != nil {
			return eksctlError(name, fmt.Sprintf("managedNodeGroups[%d]", i), err)
		}
	}
	return nil
}

// validateWithEksctl runs eksctl's own validation, which knows rules
// coderctl does not repeat (log types, label keys, IAM, add-on settings).
// ValidateManagedNodeGroup also fills in missing scaling sizes.
func validateWithEksctl(name string, cfg *api.ClusterConfig) error {
	if err := api.ValidateClusterConfig(cfg); err != nil {
		return eksctlError(name, "", err)
	}
	for i, addon := range cfg.Addons {
		if err := addon.Validate(); err != nil {
			return eksctlError(name, fmt.Sprintf("addons[%d]", i), err)
		}
	}
	for i, ng := range cfg.ManagedNodeGroups {
		if err := api.ValidateManagedNodeGroup(i, ng); err != nil {
			return eksctlError(name, fmt.Sprintf("managedNodeGroups[%d]", i), err)
		}
	}
	return nil
}

// eksctlError rewords an eksctl validation error for a config file: the
// field path comes from the message when eksctl names one (else from where
// we called it), and CLI flags become the YAML fields they stand for.
func eksctlError(name, where string, err error) error {
	msg := flagsAsFields.Replace(oneLine(err.Error()))
	field := where
	if found := configPathRE.FindString(msg); found != "" && strings.HasPrefix(found, where) {
		field = found
	}
	return fault.Input(name, field, "", "eksctl rejects it: %s", msg)
}

// flagsAsFields maps the eksctl flags its validation messages mention to
// the ClusterConfig fields a file user sets instead.
var flagsAsFields = strings.NewReplacer(
	"--nodes-min", "minSize",
	"--nodes-max", "maxSize",
	"--nodes", "desiredCapacity",
	"--node-ami-family flag", "amiFamily",
	// eksctl names access entries without their parent.
	"(accessEntries[", "(accessConfig.accessEntries[",
	" accessEntries[", " accessConfig.accessEntries[",
)

// configPathRE finds a ClusterConfig field path such as
// "managedNodeGroups[1].volumeIOPS" inside a message.
var configPathRE = regexp.MustCompile(`\b(?:` +
	strings.Join(jsonNames(reflect.TypeOf(api.ClusterConfig{})), "|") +
	`)(?:\[\d+\])?(?:\.[A-Za-z][A-Za-z0-9]*(?:\[\d+\])?)*`)
