package iampolicy

import (
	"strings"

	"github.com/coderctl/coderctl/internal/awsx"
)

// TagKey is the tag every resource coderctl creates carries, with the
// deployment's name as its value.
const TagKey = awsx.TagDeployment

// scope is where a statement's actions may act: its resources and
// conditions, built from the deployment. A statement is made per scope, so
// the scope's name is the statement's Sid.
type scope struct {
	resources func(Deployment) []string
	condition func(Deployment) map[string]map[string]any
	// needs, when set, says whether the deployment uses this scope at all
	// (no hosted zone: no Route53 statement).
	needs func(Deployment) bool
}

// ec2Created are the EC2 create calls coderctl makes with TagSpecifications
// carrying the deployment tag, and the resource types they create.
var ec2Created = []string{
	"ec2:AllocateAddress", "ec2:CreateInternetGateway", "ec2:CreateLaunchTemplate", "ec2:CreateNatGateway",
	"ec2:CreateRouteTable", "ec2:CreateSecurityGroup", "ec2:CreateSubnet", "ec2:CreateVpc",
}

var ec2CreatedTypes = []string{
	"elastic-ip", "internet-gateway", "launch-template", "natgateway", "route-table", "security-group", "subnet", "vpc",
}

// The roles coderctl passes to EKS: the cluster's role (CreateCluster), the
// nodes' role (CreateNodegroup) and the EBS CSI driver's IRSA role
// (CreateAddon's serviceAccountRoleArn). Their names are
// <cluster><suffix>, as the eks and nodegroups stages give them.
var passedRoleSuffixes = []string{"-eks-cluster", "-node", "-ebs-csi"}

// managedPolicies are the AWS managed policies coderctl attaches: the
// cluster role's, the EBS CSI role's and the node role's (stages eks and
// nodegroups). Paths as in arn:aws:iam::aws:policy/<path>.
var managedPolicies = []string{
	"AmazonEKSClusterPolicy",
	"service-role/AmazonEBSCSIDriverPolicy",
	"AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly", "AmazonSSMManagedInstanceCore",
}

// serviceQuotas are the quotas the prereqs stage reads: on-demand standard
// vCPUs and Elastic IPs (ec2), VPCs per region (vpc).
var serviceQuotas = []string{"ec2/L-1216C47A", "ec2/L-0263D0A3", "vpc/L-F678F1CE"}

func tagged(key string) func(Deployment) map[string]map[string]any {
	return func(d Deployment) map[string]map[string]any {
		return map[string]map[string]any{"StringEquals": {key: d.Cluster}}
	}
}

func regionalEach(service string, resources ...string) func(Deployment) []string {
	return func(d Deployment) []string {
		out := make([]string, len(resources))
		for i, r := range resources {
			out[i] = d.regional(service, r)
		}
		return out
	}
}

// roles are the deployment's IAM roles: every name coderctl gives a role
// is <cluster>-<what>.
func roles(d Deployment) []string { return []string{d.global("iam", "role/"+d.Cluster+"-*")} }

// scopeOrder is the statements' order in the document: reads first, then
// service by service in the order the stages use them.
var scopeOrder = []string{
	"ReadsWithoutResourceScope",
	"EC2CreateTaggedForDeployment", "EC2CreateInsideNetwork", "EC2TagOnCreate", "EC2ChangeTaggedForDeployment",
	"EC2TeardownKubernetesGroups", "EC2TeardownLoadBalancerControllerGroups", "EC2TeardownDetachedInterfaces",
	"EC2ClusterVolumes", "IAMReadDeploymentRoles", "IAMCreateDeploymentRoles", "IAMChangeDeploymentRoles", "IAMAttachManagedPolicies",
	"IAMPassDeploymentRoles", "IAMClusterOIDCProvider", "IAMEKSServiceLinkedRoles", "IAMListTagsOfAllRoles",
	"EKSDeploymentCluster", "KMSSecretsKey", "LogsClusterLogGroup",
	"RDSDeploymentDatabase", "RDSListTags",
	"SecretsManagerDeploymentSecrets", "SecretsManagerReadLegacySecrets", "SecretsManagerLegacySecretsOfDeployment",
	"ACMRequestTagged", "ACMCertificates", "ACMDeleteTagged",
	"Route53ReadZone", "Route53ChangeDeploymentRecords", "Route53Changes",
	"ELBDeleteCoderLoadBalancer", "ServiceQuotas",
	"RemoteStateBucket", "RemoteStateObjects",
}

var scopes = map[string]scope{
	// Describe and List calls that AWS authorizes only on "*": EC2, ELB and
	// Auto Scaling describes, listings across the account (clusters, roles,
	// secrets, certificates), EKS's catalogue of add-ons and access
	// policies, RDS's catalogue of engines, and STS's caller identity
	// (which needs no permission at all; listed so the document is the
	// whole list of calls).
	"ReadsWithoutResourceScope": {resources: func(Deployment) []string { return []string{"*"} }},

	// Creates that carry the deployment tag in the request: allowed only
	// with it, so nothing coderctl can create escapes `down` or the
	// leftovers listing.
	"EC2CreateTaggedForDeployment": {
		resources: func(d Deployment) []string {
			out := make([]string, len(ec2CreatedTypes))
			for i, t := range ec2CreatedTypes {
				out[i] = d.regional("ec2", t+"/*")
			}
			return out
		},
		condition: tagged("aws:RequestTag/" + TagKey),
	},
	// What a new subnet, security group, route table or NAT gateway goes
	// into: the VPC (an existing VPC carries no deployment tag) and, for a
	// NAT gateway, its public subnet and Elastic IP. The new resource
	// itself must carry the tag (the statement above).
	"EC2CreateInsideNetwork": {resources: regionalEach("ec2", "vpc/*", "subnet/*", "elastic-ip/*")},
	// Tags given at creation are authorized as ec2:CreateTags on the new
	// resource, only as part of those creates.
	"EC2TagOnCreate": {
		resources: regionalEach("ec2", "*/*"),
		condition: func(Deployment) map[string]map[string]any {
			acts := make([]string, len(ec2Created))
			for i, a := range ec2Created {
				acts[i] = strings.TrimPrefix(a, "ec2:")
			}
			return map[string]map[string]any{"StringEquals": {"ec2:CreateAction": acts}}
		},
	},
	// Changes and deletes of what carries the deployment tag.
	"EC2ChangeTaggedForDeployment": {resources: regionalEach("ec2", "*/*"), condition: tagged("aws:ResourceTag/" + TagKey)},
	// down removes the security groups Kubernetes controllers made for the
	// cluster's load balancer and left behind (they hold the VPC): the
	// cloud controller's carry kubernetes.io/cluster/<cluster>=owned, the
	// AWS Load Balancer Controller's elbv2.k8s.aws/cluster=<cluster>.
	"EC2TeardownKubernetesGroups": {
		resources: regionalEach("ec2", "security-group/*"),
		condition: func(d Deployment) map[string]map[string]any {
			return map[string]map[string]any{"StringEquals": {"aws:ResourceTag/kubernetes.io/cluster/" + d.Cluster: "owned"}}
		},
	},
	"EC2TeardownLoadBalancerControllerGroups": {
		resources: regionalEach("ec2", "security-group/*"),
		condition: tagged("aws:ResourceTag/elbv2.k8s.aws/cluster"),
	},
	// Detached ("available") network interfaces the VPC CNI or a deleted
	// load balancer left in the VPC: AWS made them, with no tag coderctl
	// could require, so this one is scoped to the account and region only.
	"EC2TeardownDetachedInterfaces": {resources: regionalEach("ec2", "network-interface/*")},

	// The EBS volumes of the cluster's claims (down --delete-volumes): the
	// EKS add-on's driver tags them kubernetes.io/cluster/<cluster>=owned,
	// as EKS tags the nodes they are detached from.
	"EC2ClusterVolumes": {
		resources: regionalEach("ec2", "volume/*", "instance/*"),
		condition: func(d Deployment) map[string]map[string]any {
			return map[string]map[string]any{"StringEquals": {"aws:ResourceTag/kubernetes.io/cluster/" + d.Cluster: "owned"}}
		},
	},
	// The deployment's roles by name, read whatever their tags (coderctl
	// reads a role first to tell another deployment's apart).
	"IAMReadDeploymentRoles": {resources: roles},
	"IAMCreateDeploymentRoles": {
		resources: roles,
		condition: tagged("aws:RequestTag/" + TagKey),
	},
	"IAMChangeDeploymentRoles": {resources: roles, condition: tagged("aws:ResourceTag/" + TagKey)},
	// Only the AWS managed policies the roles need may be attached.
	"IAMAttachManagedPolicies": {
		resources: roles,
		condition: func(d Deployment) map[string]map[string]any {
			arns := make([]string, len(managedPolicies))
			for i, p := range managedPolicies {
				arns[i] = d.arn("iam", "", "aws", "policy/"+p)
			}
			return map[string]map[string]any{
				"ArnEquals":    {"iam:PolicyARN": arns},
				"StringEquals": {"aws:ResourceTag/" + TagKey: d.Cluster},
			}
		},
	},
	// Passing a role is what lets a service act as it: only the three roles
	// coderctl makes for EKS, only to EKS.
	"IAMPassDeploymentRoles": {
		resources: func(d Deployment) []string {
			out := make([]string, len(passedRoleSuffixes))
			for i, s := range passedRoleSuffixes {
				out[i] = d.global("iam", "role/"+d.Cluster+s)
			}
			return out
		},
		condition: func(Deployment) map[string]map[string]any {
			return map[string]map[string]any{"StringEquals": {"iam:PassedToService": "eks.amazonaws.com"}}
		},
	},
	// The cluster's OIDC provider (IRSA): EKS issuers of this region.
	"IAMClusterOIDCProvider": {resources: func(d Deployment) []string {
		return []string{d.global("iam", "oidc-provider/oidc.eks."+d.Region+".amazonaws.com/id/*")}
	}},
	// EKS creates its service-linked roles on first use in an account, as
	// the identity that created the cluster or node group.
	"IAMEKSServiceLinkedRoles": {
		resources: func(d Deployment) []string { return []string{d.global("iam", "role/aws-service-role/*")} },
		condition: func(Deployment) map[string]map[string]any {
			return map[string]map[string]any{"StringEquals": {"iam:AWSServiceName": []string{"eks.amazonaws.com", "eks-nodegroup.amazonaws.com"}}}
		},
	},
	// down's leftovers listing reads the tags of every role and OIDC
	// provider to find the deployment's (tags only, no policies).
	"IAMListTagsOfAllRoles": {resources: func(d Deployment) []string {
		return []string{d.global("iam", "role/*"), d.global("iam", "oidc-provider/*")}
	}},

	// The cluster and what lives under its name.
	"EKSDeploymentCluster": {resources: func(d Deployment) []string {
		return []string{
			d.regional("eks", "cluster/"+d.Cluster),
			d.regional("eks", "nodegroup/"+d.Cluster+"/*"),
			d.regional("eks", "addon/"+d.Cluster+"/*"),
			d.regional("eks", "access-entry/"+d.Cluster+"/*"),
		}
	}},
	// secretsEncryption.keyARN: the key itself, or (given by alias) any key
	// of this account asked for by that alias.
	"KMSSecretsKey": {
		needs: func(d Deployment) bool { return d.KMSKey != "" },
		resources: func(d Deployment) []string {
			if _, ok := aliasOf(d.KMSKey); ok {
				return []string{d.regional("kms", "key/*")}
			}
			return []string{d.KMSKey}
		},
		condition: func(d Deployment) map[string]map[string]any {
			if alias, ok := aliasOf(d.KMSKey); ok {
				return map[string]map[string]any{"StringEquals": {"kms:RequestAlias": alias}}
			}
			return nil
		},
	},
	// The control plane's log group, /aws/eks/<cluster>/cluster.
	"LogsClusterLogGroup": {resources: func(d Deployment) []string {
		lg := "log-group:/aws/eks/" + d.Cluster + "/cluster"
		return []string{d.regional("logs", lg), d.regional("logs", lg+":*")}
	}},

	// The database instance, its subnet group (same name), its final and
	// pre-upgrade snapshots, and the default option and parameter groups a new instance
	// is created with.
	"RDSDeploymentDatabase": {resources: func(d Deployment) []string {
		return []string{
			d.regional("rds", "db:"+d.DBInstanceID),
			d.regional("rds", "subgrp:"+d.DBInstanceID),
			d.regional("rds", "snapshot:"+d.DBInstanceID+"-final-*"),
			d.regional("rds", "snapshot:"+d.DBInstanceID+"-pre-upgrade-*"),
			d.regional("rds", "og:*"),
			d.regional("rds", "pg:*"),
		}
	}},
	// Finding the database by tag, and down's leftovers listing, read the
	// tags of every instance and subnet group in the region.
	"RDSListTags": {resources: regionalEach("rds", "db:*", "subgrp:*")},

	// Every secret coderctl stores for the deployment is coder/<cluster>/...
	"SecretsManagerDeploymentSecrets": {resources: func(d Deployment) []string {
		return []string{d.regional("secretsmanager", "secret:coder/"+d.Cluster+"/*")}
	}},
	// Secrets of the names used before each deployment had its prefix
	// (coder/<name>): described to see whose they are, and moved (read,
	// tagged, deleted) only when they carry this deployment's tag.
	"SecretsManagerReadLegacySecrets": {resources: func(d Deployment) []string {
		return []string{d.regional("secretsmanager", "secret:coder/*")}
	}},
	"SecretsManagerLegacySecretsOfDeployment": {
		resources: func(d Deployment) []string { return []string{d.regional("secretsmanager", "secret:coder/*")} },
		condition: tagged("aws:ResourceTag/" + TagKey),
	},

	"ACMRequestTagged": {resources: regionalEach("acm", "certificate/*"), condition: tagged("aws:RequestTag/" + TagKey)},
	// CERT_ARN may be a certificate of the user's own: read any in the region.
	"ACMCertificates": {resources: regionalEach("acm", "certificate/*")},
	"ACMDeleteTagged": {resources: regionalEach("acm", "certificate/*"), condition: tagged("aws:ResourceTag/" + TagKey)},

	// HOSTED_ZONE_ID only, and in it only CODER_DOMAIN and names under it
	// (the wildcard alias and the certificate's validation records).
	"Route53ReadZone": {needs: hasZone, resources: zone},
	"Route53ChangeDeploymentRecords": {
		needs:     hasZone,
		resources: zone,
		condition: func(d Deployment) map[string]map[string]any {
			domain := strings.ToLower(strings.TrimSuffix(d.Domain, "."))
			return map[string]map[string]any{"ForAllValues:StringLike": {
				"route53:ChangeResourceRecordSetsNormalizedRecordNames": []string{domain, "*." + domain},
			}}
		},
	},
	"Route53Changes": {needs: hasZone, resources: func(d Deployment) []string {
		return []string{d.arn("route53", "", "", "change/*")}
	}},

	// The Service's load balancer and target groups, made by the cloud
	// controller (or the AWS Load Balancer Controller) with the cluster's
	// ownership tag; down deletes them if the cluster went first.
	"ELBDeleteCoderLoadBalancer": {
		resources: regionalEach("elasticloadbalancing", "loadbalancer/*", "targetgroup/*"),
		condition: func(d Deployment) map[string]map[string]any {
			return map[string]map[string]any{"StringEquals": {"aws:ResourceTag/kubernetes.io/cluster/" + d.Cluster: "owned"}}
		},
	},
	"ServiceQuotas": {resources: regionalEach("servicequotas", serviceQuotas...)},

	// Remote state (--state s3://BUCKET/KEY): the bucket, and the state and
	// lock objects.
	"RemoteStateBucket": {needs: hasState, resources: func(d Deployment) []string {
		return []string{d.arn("s3", "", "", d.StateBucket)}
	}},
	"RemoteStateObjects": {needs: hasState, resources: func(d Deployment) []string {
		obj := d.StateBucket + "/" + d.StateKey
		return []string{d.arn("s3", "", "", obj), d.arn("s3", "", "", obj+".lock")}
	}},
}

func hasZone(d Deployment) bool  { return d.HostedZoneID != "" }
func hasState(d Deployment) bool { return d.StateBucket != "" }

func zone(d Deployment) []string {
	return []string{d.arn("route53", "", "", "hostedzone/"+strings.TrimPrefix(d.HostedZoneID, "/hostedzone/"))}
}

// aliasOf returns the alias name (alias/NAME) of a KMS alias ARN or name.
func aliasOf(key string) (string, bool) {
	if strings.HasPrefix(key, "alias/") {
		return key, true
	}
	if i := strings.Index(key, ":alias/"); i >= 0 && strings.HasPrefix(key, "arn:") {
		return key[i+1:], true
	}
	return "", false
}
