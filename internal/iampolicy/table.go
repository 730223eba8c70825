package iampolicy

// Stages are the stages a grant may name, in the registry's order (a test
// holds this list to stages.Registry()).
var Stages = []string{
	"prereqs", "network", "eks", "nodegroups", "storage", "autoscaler",
	"rds", "acm", "secrets", "coder", "provisioners", "template",
}

// Grants that belong to no stage: "" is every run that talks to AWS (the
// credentials and region probe before anything else), stageLeftovers is
// down's listing of what still carries the deployment tag, stageState is
// the remote state (only with --state s3://...).
const (
	stageAny       = ""
	stageLeftovers = "down-leftovers"
	stageState     = "remote-state"
)

// grant is one row of the table: a stage calls these actions, in these
// kinds of run, on resources in this scope. The rows follow the stages'
// code: each names the functions whose calls it covers, so a change to a
// stage's calls has one place to change here (and the e2e test of
// internal/e2e/iam_test.go fails until it is).
type grant struct {
	stage   string
	modes   modeSet
	scope   string
	actions []string
}

// table is every grant, stage by stage in the registry's order.
var table = []grant{
	// awsx.Connect: credentials and region, before anything else.
	{stageAny, always, "ReadsWithoutResourceScope", []string{"sts:GetCallerIdentity", "ec2:DescribeRegions"}},

	// prereqs: checks only (its checkpoint runs in up and in verify).
	{"prereqs", upVerify, "ReadsWithoutResourceScope", []string{
		"sts:GetCallerIdentity", "ec2:DescribeAvailabilityZones", "ec2:DescribeInstanceTypeOfferings",
		"ec2:DescribeInstanceTypes", "ec2:DescribeAddresses", "ec2:DescribeVpcs",
	}},
	{"prereqs", upVerify, "ServiceQuotas", []string{"servicequotas:GetServiceQuota"}},
	{"prereqs", upVerify, "Route53ReadZone", []string{"route53:GetHostedZone"}},

	// network: find.go, vpc.go, subnets.go, igw.go, nat.go, routes.go,
	// publicip.go (apply), verify.go (checkpoint), teardown.go (destroy).
	{"network", always, "ReadsWithoutResourceScope", []string{
		"ec2:DescribeVpcs", "ec2:DescribeSubnets", "ec2:DescribeInternetGateways", "ec2:DescribeNatGateways", "ec2:DescribeRouteTables",
	}},
	{"network", upVerify, "ReadsWithoutResourceScope", []string{"ec2:DescribeVpcAttribute"}},
	{"network", up, "ReadsWithoutResourceScope", []string{"ec2:DescribeAvailabilityZones"}},
	{"network", up | down, "ReadsWithoutResourceScope", []string{"ec2:DescribeAddresses"}},
	{"network", up, "EC2CreateTaggedForDeployment", []string{
		"ec2:CreateVpc", "ec2:CreateSubnet", "ec2:CreateInternetGateway", "ec2:AllocateAddress",
		"ec2:CreateNatGateway", "ec2:CreateRouteTable",
	}},
	{"network", up, "EC2CreateInsideNetwork", []string{"ec2:CreateSubnet", "ec2:CreateRouteTable", "ec2:CreateNatGateway"}},
	{"network", up, "EC2TagOnCreate", []string{"ec2:CreateTags"}},
	{"network", up, "EC2ChangeTaggedForDeployment", []string{
		"ec2:ModifyVpcAttribute", "ec2:ModifySubnetAttribute", "ec2:CreateTags", "ec2:AttachInternetGateway",
		"ec2:DisassociateAddress", "ec2:AssociateRouteTable", "ec2:ReplaceRouteTableAssociation",
		"ec2:CreateRoute", "ec2:ReplaceRoute", "ec2:DeleteRoute",
	}},
	{"network", down, "ReadsWithoutResourceScope", []string{"ec2:DescribeSecurityGroups", "ec2:DescribeNetworkInterfaces"}},
	{"network", down, "EC2ChangeTaggedForDeployment", []string{
		"ec2:DeleteNatGateway", "ec2:ReleaseAddress", "ec2:DisassociateAddress", "ec2:DetachInternetGateway",
		"ec2:DeleteInternetGateway", "ec2:DisassociateRouteTable", "ec2:DeleteRouteTable", "ec2:DeleteSubnet",
		"ec2:RevokeSecurityGroupIngress", "ec2:RevokeSecurityGroupEgress", "ec2:DeleteSecurityGroup", "ec2:DeleteVpc",
	}},
	{"network", down, "EC2TeardownKubernetesGroups", []string{
		"ec2:RevokeSecurityGroupIngress", "ec2:RevokeSecurityGroupEgress", "ec2:DeleteSecurityGroup",
	}},
	{"network", down, "EC2TeardownLoadBalancerControllerGroups", []string{
		"ec2:RevokeSecurityGroupIngress", "ec2:RevokeSecurityGroupEgress", "ec2:DeleteSecurityGroup",
	}},
	{"network", down, "EC2TeardownDetachedInterfaces", []string{"ec2:DeleteNetworkInterface"}},

	// eks: roles.go (cluster and EBS CSI roles), cluster.go, encryption.go,
	// validatekey.go, logretention.go, securitygroup.go, oidc.go,
	// addons.go, addonvalues.go, access.go and access_validate.go, verify.go.
	{"eks", always, "ReadsWithoutResourceScope", []string{"ec2:DescribeSecurityGroups", "logs:DescribeLogGroups"}},
	// The input checks (Validate: up only) and finding the OIDC provider
	// when its ARN is not in the state.
	{"eks", up, "ReadsWithoutResourceScope", []string{
		"sts:GetCallerIdentity", "eks:DescribeAddonVersions", "eks:DescribeAddonConfiguration", "eks:ListAccessPolicies",
	}},
	{"eks", up | down, "ReadsWithoutResourceScope", []string{"iam:ListOpenIDConnectProviders"}},
	// upgrade.go and upgrade_nodes.go: a raised metadata.version, one minor
	// at a time, the node groups and add-ons following.
	{"eks", up, "ReadsWithoutResourceScope", []string{"eks:DescribeClusterVersions"}},
	{"eks", up, "EKSDeploymentCluster", []string{
		"eks:UpdateClusterVersion", "eks:DescribeNodegroup", "eks:UpdateNodegroupVersion",
	}},
	{"eks", always, "IAMReadDeploymentRoles", []string{"iam:GetRole", "iam:ListAttachedRolePolicies"}},
	{"eks", up, "IAMCreateDeploymentRoles", []string{"iam:CreateRole", "iam:TagRole"}},
	{"eks", up, "IAMChangeDeploymentRoles", []string{"iam:UpdateAssumeRolePolicy"}},
	{"eks", up, "IAMAttachManagedPolicies", []string{"iam:AttachRolePolicy"}},
	{"eks", up, "IAMPassDeploymentRoles", []string{"iam:PassRole"}},
	{"eks", up, "IAMEKSServiceLinkedRoles", []string{"iam:CreateServiceLinkedRole"}},
	{"eks", always, "EKSDeploymentCluster", []string{
		"eks:DescribeCluster", "eks:ListNodegroups", "eks:DescribeAddon",
	}},
	{"eks", upVerify, "EKSDeploymentCluster", []string{
		"eks:ListAccessEntries", "eks:DescribeAccessEntry", "eks:ListAssociatedAccessPolicies",
	}},
	{"eks", up, "EKSDeploymentCluster", []string{
		"eks:CreateCluster", "eks:UpdateClusterConfig", "eks:AssociateEncryptionConfig", "eks:DescribeUpdate",
		"eks:CreateAddon", "eks:UpdateAddon",
		"eks:CreateAccessEntry", "eks:UpdateAccessEntry", "eks:DeleteAccessEntry",
		"eks:AssociateAccessPolicy", "eks:DisassociateAccessPolicy",
	}},
	{"eks", up, "KMSSecretsKey", []string{"kms:DescribeKey"}},
	{"eks", up, "EC2CreateTaggedForDeployment", []string{"ec2:CreateSecurityGroup"}},
	{"eks", up, "EC2CreateInsideNetwork", []string{"ec2:CreateSecurityGroup"}},
	{"eks", up, "EC2TagOnCreate", []string{"ec2:CreateTags"}},
	{"eks", up, "LogsClusterLogGroup", []string{"logs:CreateLogGroup", "logs:TagResource", "logs:PutRetentionPolicy"}},
	{"eks", always, "IAMClusterOIDCProvider", []string{"iam:GetOpenIDConnectProvider"}},
	{"eks", up, "IAMClusterOIDCProvider", []string{
		"iam:CreateOpenIDConnectProvider", "iam:TagOpenIDConnectProvider", "iam:AddClientIDToOpenIDConnectProvider",
	}},
	{"eks", down, "EKSDeploymentCluster", []string{"eks:DeleteAddon", "eks:DeleteCluster"}},
	{"eks", down, "IAMClusterOIDCProvider", []string{"iam:DeleteOpenIDConnectProvider"}},
	{"eks", down, "IAMReadDeploymentRoles", []string{"iam:ListRolePolicies", "iam:ListInstanceProfilesForRole"}},
	{"eks", down, "IAMChangeDeploymentRoles", []string{
		"iam:DetachRolePolicy", "iam:DeleteRolePolicy", "iam:RemoveRoleFromInstanceProfile", "iam:DeleteRole",
	}},
	{"eks", down, "EC2ChangeTaggedForDeployment", []string{"ec2:DeleteSecurityGroup"}},
	{"eks", down, "LogsClusterLogGroup", []string{"logs:ListTagsForResource", "logs:DeleteLogGroup"}},

	// nodegroups: role.go, ltstate.go and launchtemplate.go, groups.go,
	// roll.go, validate.go and validate_lt.go, kube.go.
	{"nodegroups", always, "ReadsWithoutResourceScope", []string{"ec2:DescribeLaunchTemplates", "ec2:DescribeLaunchTemplateVersions"}},
	{"nodegroups", up, "ReadsWithoutResourceScope", []string{"ec2:DescribeInstanceTypeOfferings", "ec2:DescribeInstanceTypes"}},
	{"nodegroups", always, "IAMReadDeploymentRoles", []string{"iam:GetRole", "iam:ListAttachedRolePolicies"}},
	{"nodegroups", up, "IAMCreateDeploymentRoles", []string{"iam:CreateRole", "iam:TagRole"}},
	{"nodegroups", up, "IAMChangeDeploymentRoles", []string{"iam:UpdateAssumeRolePolicy"}},
	{"nodegroups", up, "IAMAttachManagedPolicies", []string{"iam:AttachRolePolicy"}},
	{"nodegroups", up, "IAMPassDeploymentRoles", []string{"iam:PassRole"}},
	{"nodegroups", up, "IAMEKSServiceLinkedRoles", []string{"iam:CreateServiceLinkedRole"}},
	{"nodegroups", up, "EC2CreateTaggedForDeployment", []string{"ec2:CreateLaunchTemplate"}},
	{"nodegroups", up, "EC2TagOnCreate", []string{"ec2:CreateTags"}},
	{"nodegroups", up, "EC2ChangeTaggedForDeployment", []string{"ec2:CreateLaunchTemplateVersion"}},
	{"nodegroups", always, "EKSDeploymentCluster", []string{"eks:DescribeNodegroup"}},
	{"nodegroups", up | down, "EKSDeploymentCluster", []string{"eks:DescribeCluster", "eks:ListNodegroups"}},
	{"nodegroups", up, "EKSDeploymentCluster", []string{
		"eks:CreateNodegroup", "eks:UpdateNodegroupConfig", "eks:UpdateNodegroupVersion", "eks:DescribeUpdate",
	}},
	{"nodegroups", down, "EKSDeploymentCluster", []string{"eks:DeleteNodegroup"}},
	{"nodegroups", down, "EC2ChangeTaggedForDeployment", []string{"ec2:DeleteLaunchTemplate"}},
	{"nodegroups", down, "IAMReadDeploymentRoles", []string{"iam:ListRolePolicies", "iam:ListInstanceProfilesForRole"}},
	{"nodegroups", down, "IAMChangeDeploymentRoles", []string{
		"iam:DetachRolePolicy", "iam:DeleteRolePolicy", "iam:RemoveRoleFromInstanceProfile", "iam:DeleteRole",
	}},

	// storage: the StorageClass is Kubernetes only; volumes.go finds the
	// EBS volumes of the cluster's claims on destroy, and detaches and
	// deletes them only with --delete-volumes.
	{"storage", down, "ReadsWithoutResourceScope", []string{"ec2:DescribeVolumes"}},
	{"storage", down, "EC2ClusterVolumes", []string{"ec2:DetachVolume", "ec2:DeleteVolume"}},

	// autoscaler: role.go (IRSA role through deploy.IRSARole), verify.go.
	{"autoscaler", always, "IAMReadDeploymentRoles", []string{"iam:GetRole", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies"}},
	{"autoscaler", upVerify, "IAMReadDeploymentRoles", []string{"iam:GetRolePolicy"}},
	{"autoscaler", up, "IAMCreateDeploymentRoles", []string{"iam:CreateRole", "iam:TagRole"}},
	{"autoscaler", up, "IAMChangeDeploymentRoles", []string{
		"iam:PutRolePolicy", "iam:UpdateAssumeRolePolicy", "iam:DeleteRolePolicy", "iam:DetachRolePolicy",
	}},
	{"autoscaler", upVerify, "ReadsWithoutResourceScope", []string{"autoscaling:DescribeAutoScalingGroups"}},
	{"autoscaler", upVerify, "EKSDeploymentCluster", []string{"eks:DescribeNodegroup"}},
	{"autoscaler", down, "IAMReadDeploymentRoles", []string{"iam:ListInstanceProfilesForRole"}},
	{"autoscaler", down, "IAMChangeDeploymentRoles", []string{
		"iam:DeleteRolePolicy", "iam:DetachRolePolicy", "iam:RemoveRoleFromInstanceProfile", "iam:DeleteRole",
	}},

	// rds: validate.go, subnetgroup.go, securitygroup.go, instance.go,
	// mastersecret.go, verify.go.
	{"rds", up, "ReadsWithoutResourceScope", []string{"rds:DescribeDBEngineVersions", "rds:DescribeOrderableDBInstanceOptions"}},
	{"rds", always, "ReadsWithoutResourceScope", []string{"ec2:DescribeSecurityGroups", "ec2:DescribeSecurityGroupRules"}},
	{"rds", always, "RDSDeploymentDatabase", []string{"rds:DescribeDBInstances"}},
	{"rds", up | down, "RDSDeploymentDatabase", []string{"rds:DescribeDBSubnetGroups", "rds:ListTagsForResource"}},
	{"rds", up, "RDSDeploymentDatabase", []string{
		"rds:CreateDBSubnetGroup", "rds:ModifyDBSubnetGroup", "rds:CreateDBInstance", "rds:ModifyDBInstance",
		"rds:AddTagsToResource",
		// modify.go: a major engine upgrade snapshots the instance first.
		"rds:CreateDBSnapshot", "rds:DescribeDBSnapshots",
	}},
	{"rds", up, "EC2CreateTaggedForDeployment", []string{"ec2:CreateSecurityGroup"}},
	{"rds", up, "EC2CreateInsideNetwork", []string{"ec2:CreateSecurityGroup"}},
	{"rds", up, "EC2TagOnCreate", []string{"ec2:CreateTags"}},
	{"rds", up, "EC2ChangeTaggedForDeployment", []string{
		"ec2:CreateTags", "ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress",
	}},
	{"rds", always, "SecretsManagerDeploymentSecrets", []string{"secretsmanager:DescribeSecret"}},
	{"rds", upVerify, "SecretsManagerDeploymentSecrets", []string{"secretsmanager:GetSecretValue"}},
	{"rds", up, "SecretsManagerDeploymentSecrets", []string{
		"secretsmanager:CreateSecret", "secretsmanager:PutSecretValue", "secretsmanager:RestoreSecret",
		"secretsmanager:TagResource", "secretsmanager:UntagResource",
	}},
	{"rds", upVerify, "SecretsManagerReadLegacySecrets", []string{"secretsmanager:DescribeSecret"}},
	{"rds", up, "SecretsManagerLegacySecretsOfDeployment", []string{
		"secretsmanager:GetSecretValue", "secretsmanager:RestoreSecret", "secretsmanager:DeleteSecret",
	}},
	{"rds", down, "RDSDeploymentDatabase", []string{"rds:ModifyDBInstance", "rds:DeleteDBInstance", "rds:CreateDBSnapshot", "rds:DeleteDBSubnetGroup"}},
	{"rds", down, "EC2ChangeTaggedForDeployment", []string{"ec2:RevokeSecurityGroupIngress", "ec2:DeleteSecurityGroup"}},
	{"rds", down, "SecretsManagerDeploymentSecrets", []string{"secretsmanager:DeleteSecret"}},

	// acm: acm.go, records.go, issued.go, verify.go.
	{"acm", up | down, "ReadsWithoutResourceScope", []string{"acm:ListCertificates"}},
	{"acm", always, "ACMCertificates", []string{"acm:DescribeCertificate", "acm:ListTagsForCertificate"}},
	{"acm", up, "ACMRequestTagged", []string{"acm:RequestCertificate", "acm:AddTagsToCertificate"}},
	{"acm", always, "Route53ReadZone", []string{"route53:ListResourceRecordSets"}},
	{"acm", up | down, "Route53ReadZone", []string{"route53:GetHostedZone"}},
	{"acm", up, "Route53ChangeDeploymentRecords", []string{"route53:ChangeResourceRecordSets"}},
	{"acm", up, "Route53Changes", []string{"route53:GetChange"}},
	{"acm", down, "ReadsWithoutResourceScope", []string{"elasticloadbalancing:DescribeLoadBalancers", "elasticloadbalancing:DescribeListeners"}},
	{"acm", down, "ACMDeleteTagged", []string{"acm:DeleteCertificate"}},
	{"acm", down, "Route53ChangeDeploymentRecords", []string{"route53:ChangeResourceRecordSets"}},
	{"acm", down, "Route53Changes", []string{"route53:GetChange"}},

	// secrets: smsecret.go, dburl.go, role.go (IRSA role), verify.go.
	{"secrets", always, "SecretsManagerDeploymentSecrets", []string{"secretsmanager:DescribeSecret"}},
	{"secrets", upVerify, "SecretsManagerDeploymentSecrets", []string{"secretsmanager:GetSecretValue"}},
	{"secrets", up, "SecretsManagerDeploymentSecrets", []string{
		"secretsmanager:CreateSecret", "secretsmanager:PutSecretValue",
		"secretsmanager:RestoreSecret", "secretsmanager:TagResource",
	}},
	{"secrets", down, "SecretsManagerDeploymentSecrets", []string{"secretsmanager:DeleteSecret"}},
	{"secrets", always, "IAMReadDeploymentRoles", []string{"iam:GetRole", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies"}},
	{"secrets", upVerify, "IAMReadDeploymentRoles", []string{"iam:GetRolePolicy"}},
	{"secrets", up, "IAMCreateDeploymentRoles", []string{"iam:CreateRole", "iam:TagRole"}},
	{"secrets", up, "IAMChangeDeploymentRoles", []string{
		"iam:PutRolePolicy", "iam:UpdateAssumeRolePolicy", "iam:DeleteRolePolicy", "iam:DetachRolePolicy",
	}},
	{"secrets", down, "IAMReadDeploymentRoles", []string{"iam:ListInstanceProfilesForRole"}},
	{"secrets", down, "IAMChangeDeploymentRoles", []string{
		"iam:DeleteRolePolicy", "iam:DetachRolePolicy", "iam:RemoveRoleFromInstanceProfile", "iam:DeleteRole",
	}},

	// coder: lb.go (the NLB's listener in verify, its leftovers in destroy),
	// dns.go (alias records when HOSTED_ZONE_ID is set).
	{"coder", always, "ReadsWithoutResourceScope", []string{"elasticloadbalancing:DescribeLoadBalancers", "elasticloadbalancing:DescribeListeners"}},
	{"coder", down, "ReadsWithoutResourceScope", []string{"elasticloadbalancing:DescribeTags", "elasticloadbalancing:DescribeTargetGroups"}},
	{"coder", down, "ELBDeleteCoderLoadBalancer", []string{"elasticloadbalancing:DeleteLoadBalancer", "elasticloadbalancing:DeleteTargetGroup"}},
	{"coder", down, "EKSDeploymentCluster", []string{"eks:DescribeCluster"}},
	{"coder", up | down, "Route53ReadZone", []string{"route53:ListResourceRecordSets"}},
	{"coder", up, "Route53ChangeDeploymentRecords", []string{"route53:ChangeResourceRecordSets"}},
	{"coder", up, "Route53Changes", []string{"route53:GetChange"}},
	{"coder", down, "Route53ChangeDeploymentRecords", []string{"route53:ChangeResourceRecordSets"}},
	{"coder", down, "Route53Changes", []string{"route53:GetChange"}},

	// provisioners and template: the first owner's secret
	// (coderapi.FirstUserStore), when there is no CODER_SESSION_TOKEN.
	{"provisioners", upVerify, "SecretsManagerDeploymentSecrets", []string{"secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"}},
	{"provisioners", up, "SecretsManagerDeploymentSecrets", []string{"secretsmanager:CreateSecret", "secretsmanager:RestoreSecret", "secretsmanager:TagResource"}},
	{"provisioners", down, "EKSDeploymentCluster", []string{"eks:DescribeCluster"}},
	{"template", upVerify, "SecretsManagerDeploymentSecrets", []string{"secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"}},
	{"template", down, "SecretsManagerDeploymentSecrets", []string{"secretsmanager:DescribeSecret", "secretsmanager:DeleteSecret"}},
	{"template", down, "EKSDeploymentCluster", []string{"eks:DescribeCluster"}},

	// down: inventory.Tagged lists every resource still tagged for the
	// deployment once the stages are destroyed.
	{stageLeftovers, down, "ReadsWithoutResourceScope", []string{
		"ec2:DescribeVpcs", "ec2:DescribeSubnets", "ec2:DescribeInternetGateways", "ec2:DescribeNatGateways",
		"ec2:DescribeAddresses", "ec2:DescribeRouteTables", "ec2:DescribeSecurityGroups",
		"eks:ListClusters", "iam:ListRoles", "iam:ListOpenIDConnectProviders", "secretsmanager:ListSecrets",
		"acm:ListCertificates", "elasticloadbalancing:DescribeLoadBalancers", "elasticloadbalancing:DescribeTags",
	}},
	{stageLeftovers, down, "IAMListTagsOfAllRoles", []string{"iam:ListRoleTags", "iam:ListOpenIDConnectProviderTags"}},
	{stageLeftovers, down, "RDSListTags", []string{"rds:DescribeDBInstances", "rds:DescribeDBSubnetGroups", "rds:ListTagsForResource"}},
	{stageLeftovers, down, "ACMCertificates", []string{"acm:ListTagsForCertificate"}},
	{stageLeftovers, down, "EKSDeploymentCluster", []string{"eks:DescribeCluster"}},

	// Remote state (internal/state: remote.go, remote_lock.go): HeadBucket
	// is authorized as s3:ListBucket, HeadObject as s3:GetObject.
	{stageState, always, "ReadsWithoutResourceScope", []string{"sts:GetCallerIdentity"}},
	{stageState, always, "RemoteStateBucket", []string{"s3:ListBucket", "s3:GetBucketVersioning"}},
	{stageState, always, "RemoteStateObjects", []string{"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}},
}
