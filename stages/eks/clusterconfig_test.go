package eks

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/testenv/ekstest"
	"github.com/coderctl/coderctl/internal/testenv/enginetest"
	"github.com/coderctl/coderctl/internal/testenv/stagetest"
)

// keyAlias names the tests' KMS key by an alias ARN, which EKS accepts as
// well as the key's own ARN and which is known before moto makes the key.
const keyAlias = "arn:aws:kms:us-west-2:123456789012:alias/coder-secrets"

// Replacements in the shipped cluster-config.yaml.
var (
	withKey       = []string{"iam:\n", "secretsEncryption:\n  keyARN: " + keyAlias + "\n\niam:\n"}
	withCIDRs     = []string{"    privateAccess: true\n", "    privateAccess: true\n  publicAccessCIDRs: [\"203.0.113.0/24\", \"198.51.100.0/24\"]\n"}
	withLogging   = []string{`enableTypes: ["api", "audit", "authenticator"]`, "enableTypes: [\"api\", \"audit\", \"authenticator\", \"scheduler\"]\n    logRetentionInDays: 30"}
	withValues    = []string{"- name: coredns\n", "- name: coredns\n    configurationValues: |-\n      replicaCount: 3\n      resources:\n        limits:\n          memory: 170Mi\n"}
	everyChange   = join(withKey, withCIDRs, withLogging, withValues)
	retentionDays = int32(30)
)

func join(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// configEnv starts moto with the EKS double in front, makes the KMS key
// behind keyAlias and loads the shipped config with replacements.
func configEnv(t *testing.T, opts ekstest.Options, replacements ...string) (*stagetest.ConfigEnv, *ekstest.Server) {
	t.Helper()
	emu := ekstest.Use(t, opts)
	e := stagetest.NewWithClusterConfig(t, nil, stagetest.WriteClusterConfig(t, t.TempDir(), replacements...))
	emu.Wire(e.Deps)
	makeKey(t, e)
	return e, emu
}

// makeKey creates the symmetric key behind keyAlias.
func makeKey(t *testing.T, e *stagetest.ConfigEnv) {
	t.Helper()
	k := kms.NewFromConfig(e.Deps.AWS.Config)
	out, err := k.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("coder secrets")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/coder-secrets"), TargetKeyId: out.KeyMetadata.KeyId}); err != nil {
		t.Fatal(err)
	}
}

// reconfigure loads another version of the config, as a new run with an
// edited file would.
func reconfigure(t *testing.T, e *stagetest.ConfigEnv, emu *ekstest.Server, replacements ...string) {
	t.Helper()
	e.ClusterConfig = stagetest.WriteClusterConfig(t, t.TempDir(), replacements...)
	e.Reload(t)
	emu.Wire(e.Deps)
}

func runConfig(t *testing.T, e *stagetest.ConfigEnv, opts engine.Options) (*engine.Summary, []engine.Event) {
	t.Helper()
	return run(t, e.Env, opts)
}

func logGroup(t *testing.T, e *stagetest.ConfigEnv) (exists bool, retention int32) {
	t.Helper()
	out, err := cloudwatchlogs.NewFromConfig(e.Deps.AWS.Config).DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String(ekstest.LogGroupName(cluster))})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range out.LogGroups {
		if aws.ToString(g.LogGroupName) == ekstest.LogGroupName(cluster) {
			return true, aws.ToInt32(g.RetentionInDays)
		}
	}
	return false, 0
}

func TestCreateCarriesEncryptionLoggingEndpointsAndAddonValues(t *testing.T) {
	e, emu := configEnv(t, ekstest.Options{UpdatePolls: 1}, everyChange...)
	sum, _ := runConfig(t, e, engine.Options{Mode: engine.ModeApply, Only: []string{"network", Name}})

	var body struct {
		ResourcesVpcConfig struct {
			EndpointPublicAccess, EndpointPrivateAccess bool
			PublicAccessCidrs                           []string
		}
		Logging          ekstypesLogging
		EncryptionConfig []struct {
			Resources []string
			Provider  struct{ KeyArn string }
		}
	}
	creates := emu.Requests("POST", "/clusters")
	if len(creates) != 1 {
		t.Fatalf("%d CreateCluster calls", len(creates))
	}
	mustJSON(t, creates[0], &body)
	vc := body.ResourcesVpcConfig
	if !vc.EndpointPublicAccess || !vc.EndpointPrivateAccess || strings.Join(vc.PublicAccessCidrs, ",") != "198.51.100.0/24,203.0.113.0/24" {
		t.Errorf("CreateCluster endpoint config %+v", vc)
	}
	if got := body.Logging.enabled(); got != "api,audit,authenticator,scheduler" {
		t.Errorf("CreateCluster logging %q", got)
	}
	if len(body.EncryptionConfig) != 1 || body.EncryptionConfig[0].Provider.KeyArn != keyAlias || strings.Join(body.EncryptionConfig[0].Resources, ",") != "secrets" {
		t.Errorf("CreateCluster encryption %+v", body.EncryptionConfig)
	}

	c := describe(t, e.Env)
	if clusterKey(c) != keyAlias || strings.Join(c.ResourcesVpcConfig.PublicAccessCidrs, ",") != "198.51.100.0/24,203.0.113.0/24" || len(enabledLogTypes(c)) != 4 {
		t.Errorf("described: key %q, CIDRs %v, logging %v", clusterKey(c), c.ResourcesVpcConfig.PublicAccessCidrs, enabledLogTypes(c))
	}
	// Everything was set at creation: no update was needed.
	if n := len(emu.Requests("POST", "/clusters/"+cluster+"/update-config")) + len(emu.Requests("POST", "/clusters/"+cluster+"/encryption-config/associate")); n != 0 {
		t.Errorf("%d cluster updates after a create that had it all", n)
	}

	var addon struct{ AddonName, ConfigurationValues string }
	for _, b := range emu.Requests("POST", "/clusters/"+cluster+"/addons") {
		mustJSON(t, b, &addon)
		if addon.AddonName == addonCoreDNS && addon.ConfigurationValues != "replicaCount: 3\nresources:\n  limits:\n    memory: 170Mi" {
			t.Errorf("CreateAddon coredns values %q, want the file's as written", addon.ConfigurationValues)
		}
	}
	d, err := e.Deps.AWS.EKS.DescribeAddon(ctx, &eks.DescribeAddonInput{ClusterName: aws.String(cluster), AddonName: aws.String(addonCoreDNS)})
	if err != nil || !strings.Contains(aws.ToString(d.Addon.ConfigurationValues), "replicaCount: 3") {
		t.Errorf("coredns described with values %q (%v)", aws.ToString(d.Addon.ConfigurationValues), err)
	}

	if exists, days := logGroup(t, e); !exists || days != retentionDays {
		t.Errorf("log group exists=%v retention %d, want %d", exists, days, retentionDays)
	}
	checks := checksOf(sum)
	for _, name := range []string{"secrets-encryption", "log-retention", "endpoint-access", "control-plane-logging"} {
		if c := checks[name]; c.Status != engine.Pass {
			t.Errorf("check %s = %+v, want pass", name, c)
		}
	}
	if c := checks["addon-coredns"]; c.Status == engine.Fail {
		t.Errorf("addon-coredns = %+v", c)
	}

	// Nothing left to do: plan says so and apply changes nothing.
	sum, _ = runConfig(t, e, engine.Options{Mode: engine.ModePlan, Only: []string{Name}})
	for res, a := range actionsOf(sum) {
		if a.Kind != engine.Nothing {
			t.Errorf("plan after apply: %s = %s (%s)", res, a.Kind, a.Reason)
		}
	}
	e.Calls.Reset()
	runConfig(t, e, engine.Options{Mode: engine.ModeApply, Only: []string{Name}})
	if m := e.Calls.Mutations(); len(m) != 0 {
		t.Errorf("second apply made mutating calls: %v", m)
	}
	if f := emu.Faults(); len(f) != 0 {
		t.Errorf("double faults: %v", f)
	}
}

// ekstypesLogging decodes a logging field of a request body.
type ekstypesLogging struct {
	ClusterLogging []struct {
		Types   []string
		Enabled bool
	}
}

func (l ekstypesLogging) enabled() string {
	var on []string
	for _, s := range l.ClusterLogging {
		if s.Enabled {
			on = append(on, s.Types...)
		}
	}
	return strings.Join(on, ",")
}

func TestChangesToAnExistingClusterArePlannedAndConverged(t *testing.T) {
	// Updates stay InProgress for two looks, so apply must wait for each
	// before it starts the next (EKS refuses a second one meanwhile).
	e, emu := configEnv(t, ekstest.Options{UpdatePolls: 2})
	runConfig(t, e, engine.Options{Mode: engine.ModeApply, Only: []string{"network", Name}})

	reconfigure(t, e, emu, everyChange...)
	e.Calls.Reset()
	sum, _ := runConfig(t, e, engine.Options{Mode: engine.ModePlan, Only: []string{Name}})
	if m := e.Calls.Mutations(); len(m) != 0 {
		t.Errorf("plan made mutating calls: %v", m)
	}
	acts := actionsOf(sum)
	wantActs := map[string][]string{
		"eks-cluster/" + cluster: {"public access CIDRs 0.0.0.0/0, want 198.51.100.0/24,203.0.113.0/24", "enable control-plane logging scheduler",
			"associate secrets encryption with KMS key " + keyAlias, "irreversible"},
		"log-group/aws/eks/" + cluster + "/cluster": {"retention kept forever, want 30 days"},
		"eks-addon/coredns":                         {"configuration values differ in replicaCount, resources"},
	}
	for res, fragments := range wantActs {
		a := acts[res]
		if a.Kind != engine.Update {
			t.Errorf("plan %s = %s (%s), want update", res, a.Kind, a.Reason)
		}
		for _, f := range fragments {
			if !strings.Contains(a.Reason, f) {
				t.Errorf("plan %s reason %q lacks %q", res, a.Reason, f)
			}
		}
	}

	runConfig(t, e, engine.Options{Mode: engine.ModeApply, Only: []string{Name}})
	c := describe(t, e.Env)
	if clusterKey(c) != keyAlias || strings.Join(c.ResourcesVpcConfig.PublicAccessCidrs, ",") != "198.51.100.0/24,203.0.113.0/24" || !enabledLogTypes(c)["scheduler"] {
		t.Errorf("after apply: key %q, CIDRs %v, logging %v", clusterKey(c), c.ResourcesVpcConfig.PublicAccessCidrs, enabledLogTypes(c))
	}
	if _, days := logGroup(t, e); days != retentionDays {
		t.Errorf("retention %d, want %d", days, retentionDays)
	}
	if d, err := e.Deps.AWS.EKS.DescribeAddon(ctx, &eks.DescribeAddonInput{ClusterName: aws.String(cluster), AddonName: aws.String(addonCoreDNS)}); err != nil ||
		valuesDrift(aws.ToString(d.Addon.ConfigurationValues), `{"replicaCount": 3, "resources": {"limits": {"memory": "170Mi"}}}`) != "" {
		t.Errorf("coredns values after apply %q (%v)", aws.ToString(d.Addon.ConfigurationValues), err)
	}

	// Re-plan shows nothing; a re-run neither updates nor associates again.
	sum, _ = runConfig(t, e, engine.Options{Mode: engine.ModePlan, Only: []string{Name}})
	for res, a := range actionsOf(sum) {
		if a.Kind != engine.Nothing {
			t.Errorf("plan after converging: %s = %s (%s)", res, a.Kind, a.Reason)
		}
	}
	runConfig(t, e, engine.Options{Mode: engine.ModeApply, Only: []string{Name}})
	if n := len(emu.Requests("POST", "/clusters/"+cluster+"/encryption-config/associate")); n != 1 {
		t.Errorf("%d AssociateEncryptionConfig calls, want exactly 1", n)
	}
	if n := len(emu.Requests("POST", "/clusters/"+cluster+"/update-config")); n != 2 {
		t.Errorf("%d UpdateClusterConfig calls, want 2 (endpoint access, logging)", n)
	}
	if f := emu.Faults(); len(f) != 0 {
		t.Errorf("double faults: %v", f)
	}
}

func TestRetentionIsConvergedWhenChangedBehindOurBack(t *testing.T) {
	e, emu := configEnv(t, ekstest.Options{}, withLogging...)
	runConfig(t, e, engine.Options{Mode: engine.ModeApply, Only: []string{"network", Name}})
	logs := cloudwatchlogs.NewFromConfig(e.Deps.AWS.Config)
	if _, err := logs.PutRetentionPolicy(ctx, &cloudwatchlogs.PutRetentionPolicyInput{LogGroupName: aws.String(ekstest.LogGroupName(cluster)), RetentionInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	if c := verifyEKS(t, e.Env)["log-retention"]; c.Status != engine.Fail || !strings.Contains(c.Reason, "retention 7 days, want 30 days") {
		t.Errorf("log-retention after a change = %+v", c)
	}
	runConfig(t, e, engine.Options{Mode: engine.ModeApply, Only: []string{Name}})
	if c := verifyEKS(t, e.Env)["log-retention"]; c.Status != engine.Pass {
		t.Errorf("log-retention after apply = %+v", c)
	}
	_ = emu
}

// TestEncryptionAndValuesBadInput: each case is bad input naming the
// field, before any change.
func TestEncryptionAndValuesBadInput(t *testing.T) {
	tests := []struct {
		name   string
		config []string
		setup  func(t *testing.T, e *stagetest.ConfigEnv)
		want   []string
	}{
		{name: "key in another region", config: []string{"iam:\n", "secretsEncryption:\n  keyARN: arn:aws:kms:us-east-1:123456789012:key/1234\n\niam:\n"},
			want: []string{"cluster-config.yaml: secretsEncryption.keyARN", "in region us-east-1, the cluster in us-west-2"}},
		{name: "not a KMS key", config: []string{"iam:\n", "secretsEncryption:\n  keyARN: arn:aws:s3:::my-bucket\n\niam:\n"},
			want: []string{"secretsEncryption.keyARN", "not the ARN of a KMS key"}},
		{name: "key that does not exist", config: []string{"iam:\n", "secretsEncryption:\n  keyARN: arn:aws:kms:us-west-2:123456789012:alias/nope\n\niam:\n"},
			want: []string{"secretsEncryption.keyARN", "does not exist"}},
		{name: "disabled key", config: withKey, setup: func(t *testing.T, e *stagetest.ConfigEnv) {
			k := kms.NewFromConfig(e.Deps.AWS.Config)
			d, err := k.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyAlias)})
			if err != nil {
				t.Fatal(err)
			}
			// DisableKey takes the key, not an alias.
			if _, err := k.DisableKey(ctx, &kms.DisableKeyInput{KeyId: d.KeyMetadata.KeyId}); err != nil {
				t.Fatal(err)
			}
		}, want: []string{"secretsEncryption.keyARN", "is Disabled"}},
		{name: "cluster encrypted with another key", config: withKey, setup: func(t *testing.T, e *stagetest.ConfigEnv) {
			if _, err := e.Deps.AWS.EKS.CreateCluster(ctx, &eks.CreateClusterInput{
				Name: aws.String(cluster), Version: aws.String("1.34"), RoleArn: aws.String("arn:aws:iam::123456789012:role/r"),
				ResourcesVpcConfig: &ekstypes.VpcConfigRequest{SubnetIds: []string{"subnet-1"}}, Tags: e.Deps.Tags(Name, nil),
				EncryptionConfig: encryptionConfig("arn:aws:kms:us-west-2:123456789012:key/other"),
			}); err != nil {
				t.Fatal(err)
			}
		}, want: []string{"secretsEncryption.keyARN", "encrypts secrets with KMS key arn:aws:kms:us-west-2:123456789012:key/other", "cannot change the key"}},
		{name: "values of the wrong type", config: []string{"- name: coredns\n", "- name: coredns\n    configurationValues: '{\"replicaCount\": \"three\"}'\n"},
			want: []string{"cluster-config.yaml: addons[1].configurationValues", "coredns v1.12.3-eksbuild.1", "$.replicaCount: got string, want integer"}},
		{name: "values with a key the add-on does not take", config: []string{"- name: vpc-cni\n", "- name: vpc-cni\n    version: v1.19.6-eksbuild.1\n    configurationValues: |\n      env:\n        WARM_IP_TARGET: \"5\"\n        NOT_A_SETTING: x\n"},
			want: []string{"addons[0].configurationValues", "vpc-cni v1.19.6-eksbuild.1", "NOT_A_SETTING", "not allowed"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, _ := configEnv(t, ekstest.Options{}, tc.config...)
			if tc.setup != nil {
				tc.setup(t, e)
			}
			assertRefusedBeforeAnyChange(t, e.Env, tc.want)
		})
	}
}

// TestAnUpdateWaitsForOneInProgress: EKS refuses a second update while one
// runs (someone else's, or a killed run's); coderctl waits for it to end
// and then makes its own, instead of failing.
func TestAnUpdateWaitsForOneInProgress(t *testing.T) {
	e, emu := newEnv(t, ekstest.Options{UpdatePolls: 3})
	applyAll(t, e)
	if _, err := e.Deps.AWS.EKS.UpdateClusterConfig(ctx, &eks.UpdateClusterConfigInput{Name: aws.String(cluster), Logging: loggingRequest([]string{"scheduler"}, nil)}); err != nil {
		t.Fatal(err)
	}
	p := &enginetest.Recorder{}
	st := &stage{d: e.Deps}
	err := st.updateConfig(ctx, p, &eks.UpdateClusterConfigInput{ResourcesVpcConfig: &ekstypes.VpcConfigRequest{
		EndpointPublicAccess: aws.Bool(true), EndpointPrivateAccess: aws.Bool(false)}})
	if err != nil {
		t.Fatalf("update while another runs: %v", err)
	}
	if all := strings.Join(p.Lines, "\n"); !strings.Contains(all, "another update of the cluster is in progress") || !strings.Contains(all, "InProgress") {
		t.Errorf("progress does not show the wait:\n%s", all)
	}
	c := describe(t, e)
	if c.ResourcesVpcConfig.EndpointPrivateAccess || !enabledLogTypes(c)["scheduler"] {
		t.Errorf("after both updates: private %v, logging %v", c.ResourcesVpcConfig.EndpointPrivateAccess, enabledLogTypes(c))
	}
	if n := len(emu.Requests("POST", "/clusters/"+cluster+"/update-config")); n < 3 {
		t.Errorf("%d UpdateClusterConfig calls, want the other's, at least one refused, and ours", n)
	}
}
