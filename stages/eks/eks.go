// Package eks is the guide's "Create the EKS cluster" step: the cluster IAM
// role, the EKS control plane (version, endpoint access, control-plane
// logging, access entries with the creator as admin), the IAM OIDC provider
// for IRSA, and the managed add-ons vpc-cni, coredns, kube-proxy and the EBS
// CSI driver with its own IRSA role. It calls the EKS, IAM and EC2 APIs
// directly (no CloudFormation, no eksctl).
package eks

import (
	"fmt"
	"time"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/deploy"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
)

// Name is the stage's registry name.
const Name = names.StageEKS

// Step names; other stages name them in their needs ("eks/cluster").
const (
	StepEBSCSIRole = "ebs-csi-role"
	StepAddons     = "addons"
)

// maxIAMNameLen is IAM's limit on role names.
const maxIAMNameLen = 64

// New builds the eks stage.
func New(d *deploy.Deps) engine.Stage {
	s := &stage{d: d}
	return engine.Stage{
		Name:    Name,
		Summary: "cluster role, EKS cluster, IAM OIDC provider (IRSA), add-ons",
		Needs:   []string{names.StageNetwork},
		Reads:   []string{config.KeyRegion, config.KeyClusterName, names.KeyVPCID, names.KeyPrivateSubnetIDs, names.KeyPublicSubnetIDs},
		Writes:  []string{names.KeyClusterRoleARN, names.KeyClusterEndpoint, names.KeyClusterSecurityGroupID, names.KeyOIDCProviderARN, names.KeyEBSCSIRoleARN},
		Steps: []engine.Step{
			// The role needs nothing from the network, but a step without
			// needs waits for the whole network stage (NAT gateways take
			// minutes); hanging it on the VPC lets it overlap the rest.
			{Name: names.EKSStepClusterRole, Needs: []string{engine.StepID(names.StageNetwork, names.NetworkStepVPC)}, Typical: 5 * time.Second,
				Plan: s.planClusterRole, Apply: s.applyClusterRole, Destroy: s.destroyClusterRole},
			{Name: names.EKSStepCluster, Needs: []string{engine.StepID(names.StageNetwork, names.NetworkStepSubnets), engine.StepID(Name, names.EKSStepClusterRole)}, Typical: 13 * time.Minute,
				Plan: s.planCluster, Apply: s.applyCluster, Destroy: s.destroyCluster},
			{Name: StepAccessEntries, Needs: []string{engine.StepID(Name, names.EKSStepCluster)}, Typical: 5 * time.Second,
				Plan: s.planAccessEntries, Apply: s.applyAccessEntries, Destroy: s.destroyAccessEntries},
			{Name: names.EKSStepOIDCProvider, Needs: []string{engine.StepID(Name, names.EKSStepCluster)}, Typical: 5 * time.Second,
				Plan: s.planOIDC, Apply: s.applyOIDC, Destroy: s.destroyOIDC},
			{Name: StepEBSCSIRole, Needs: []string{engine.StepID(Name, names.EKSStepOIDCProvider)}, Typical: 5 * time.Second,
				Plan: s.planEBSCSIRole, Apply: s.applyEBSCSIRole, Destroy: s.destroyEBSCSIRole},
			{Name: StepAddons, Needs: []string{engine.StepID(Name, names.EKSStepCluster), engine.StepID(Name, StepEBSCSIRole)}, Typical: 3 * time.Minute,
				Plan: s.planAddons, Apply: s.applyAddons, Destroy: s.destroyAddons},
		},
		Verify:   s.verify,
		Validate: s.validate,
	}
}

// stage holds the run's dependencies.
type stage struct{ d *deploy.Deps }

// clusterName is the EKS cluster's name: the deployment's name.
func (s *stage) clusterName() string { return s.d.Deployment() }

// clusterRoleName is the control plane's IAM role.
func (s *stage) clusterRoleName() string { return s.clusterName() + "-eks-cluster" }

// ebsCSIRoleName is the EBS CSI controller's IRSA role.
func (s *stage) ebsCSIRoleName() string { return s.clusterName() + "-ebs-csi" }

// sharedSGName is the security group coderctl attaches to the control plane.
func (s *stage) sharedSGName() string { return s.clusterName() + "-cluster-shared" }

// tags are the tags of every resource of this stage.
func (s *stage) tags(name string) map[string]string {
	return s.d.Tags(Name, map[string]string{"Name": name})
}

// ownedBy reports whether tags mark a resource as this deployment's.
func (s *stage) ownedBy(tags map[string]string) bool {
	return tags[awsx.TagDeployment] == s.d.Deployment()
}

// clientToken derives an idempotency token from the deployment and the
// resource, so a run killed after a create call and started again sends
// the same token and gets the same resource instead of a second one.
// incarnation distinguishes a resource from its successor after a destroy
// (a token is remembered by AWS for a while and would otherwise return the
// deleted resource's answer).
func (s *stage) clientToken(resource, incarnation string) string {
	return awsx.ClientToken(s.d.Deployment(), Name, resource, incarnation)
}

// partition is the AWS partition of the deployment's region, for ARNs.
func (s *stage) partition() string { return awsx.Partition(s.d.Region()) }

// managedPolicyARN is the ARN of an AWS managed policy in this partition.
func (s *stage) managedPolicyARN(path string) string {
	return awsx.ManagedPolicyARN(s.partition(), path)
}

// action builds a one-action plan.
func action(kind engine.ActionKind, resource, format string, args ...any) []engine.Action {
	return []engine.Action{{Kind: kind, Resource: resource, Reason: fmt.Sprintf(format, args...)}}
}
