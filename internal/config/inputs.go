package config

import (
	"fmt"
	"strconv"
	"strings"

	api "github.com/weaveworks/eksctl/pkg/apis/eksctl.io/v1alpha5"

	"github.com/coderctl/coderctl/internal/fault"
)

// Where an input's value came from, besides the env file and cluster config
// paths.
const (
	SourceEnvironment = "environment"
	SourceDefault     = "default"
)

// defaultEnvFile names the env file in messages when the caller gave none.
const defaultEnvFile = "coder-infra.env"

// Inputs are the user-set keys, validated and normalized, each with the
// place its value came from. Precedence: process environment > env file >
// cluster-config.yaml (AWS_REGION, CLUSTER_NAME) > default. Command-line
// flags, where a command has them, go first by being passed in through
// lookupEnv.
type Inputs struct {
	envFile    string
	configPath string
	values     map[string]string
	sources    map[string]string
	// clusterFields maps AWS_REGION and CLUSTER_NAME to the cluster config
	// field that also sets them, when it does.
	clusterFields map[string]string
}

// ResolveInputs merges the env file's values with the process environment
// (lookupEnv, e.g. os.LookupEnv) and validates the format of every key that
// is set. An empty value counts as unset, as ${KEY:-default} does in a
// shell. AWS_REGION and CLUSTER_NAME must agree with the cluster config's
// metadata, and are taken from it when unset. Keys that are not inputs
// (outputs such as VPC_ID) are ignored. cluster may be nil for commands that
// do not need it.
func ResolveInputs(envFile string, fileValues map[string]string, lookupEnv func(string) (string, bool),
	cluster *api.ClusterConfig, configPath string) (*Inputs, error) {
	if envFile == "" {
		envFile = defaultEnvFile
	}
	if configPath == "" {
		configPath = DefaultClusterConfigFile
	}
	in := &Inputs{envFile: envFile, configPath: configPath, values: map[string]string{}, sources: map[string]string{},
		clusterFields: map[string]string{}}
	for _, k := range inputTable() {
		raw, source := in.lookup(k.Key, fileValues, lookupEnv)
		if source == "" {
			continue
		}
		v, problem := k.check(raw)
		if problem != nil {
			return nil, fault.Input(source, k.Key, problem.hint, "%s", problem.msg)
		}
		in.values[k.Key], in.sources[k.Key] = v, source
	}
	if err := in.agreeWithFile(fileValues, lookupEnv); err != nil {
		return nil, err
	}
	if err := in.agreeWithCluster(cluster); err != nil {
		return nil, err
	}
	return in, nil
}

// identityKeys say where the deployment is. The environment may override
// other inputs (USERS for one run), but an AWS_REGION exported in the shell
// that differs from the file's would act on one region while the file, which
// a shell sources later, says another.
var identityKeys = []string{KeyRegion, KeyClusterName}

// agreeWithFile refuses an identity key set in both the environment and the
// env file to different values.
func (in *Inputs) agreeWithFile(fileValues map[string]string, lookupEnv func(string) (string, bool)) error {
	if lookupEnv == nil {
		return nil
	}
	for _, key := range identityKeys {
		env, _ := lookupEnv(key)
		env, file := strings.TrimSpace(env), strings.TrimSpace(fileValues[key])
		if env == "" || file == "" || env == file {
			continue
		}
		return fault.Input(SourceEnvironment, key,
			fmt.Sprintf("unset %s in the environment, or make %s say the same", key, in.envFile),
			"%s in the environment contradicts %s=%s in %s", env, key, file, in.envFile)
	}
	return nil
}

// CheckInput validates one value for key as ResolveInputs would, for
// commands that set a single key (`coderctl state set`). It returns the
// normalized value; keys that are not inputs pass unchanged. source names
// where the value came from in the error.
func CheckInput(source, key, value string) (string, error) {
	for _, k := range inputTable() {
		if k.Key != key {
			continue
		}
		v := strings.TrimSpace(value)
		if v == "" {
			return "", nil
		}
		normalized, problem := k.check(v)
		if problem != nil {
			return "", fault.Input(source, key, problem.hint, "%s", problem.msg)
		}
		return normalized, nil
	}
	return value, nil
}

// DefaultClusterConfigFile is the cluster config's path when --config is not given.
const DefaultClusterConfigFile = "cluster-config.yaml"

// lookup finds key's raw value and its source ("" when unset).
func (in *Inputs) lookup(key string, fileValues map[string]string, lookupEnv func(string) (string, bool)) (value, source string) {
	if lookupEnv != nil {
		if v, ok := lookupEnv(key); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v), SourceEnvironment
		}
	}
	if v := strings.TrimSpace(fileValues[key]); v != "" {
		return v, in.envFile
	}
	return "", ""
}

// agreeWithCluster fills AWS_REGION and CLUSTER_NAME from the cluster
// config, or refuses a value that contradicts it: the stages would tag and
// look up resources under one name while eksctl's file says another.
func (in *Inputs) agreeWithCluster(cluster *api.ClusterConfig) error {
	if cluster == nil || cluster.Metadata == nil {
		return nil
	}
	pairs := []struct{ key, field, want string }{
		{KeyRegion, "metadata.region", cluster.Metadata.Region},
		{KeyClusterName, "metadata.name", cluster.Metadata.Name},
	}
	for _, p := range pairs {
		got, set := in.values[p.key]
		if p.want != "" {
			in.clusterFields[p.key] = p.field
		}
		switch {
		case p.want == "":
		case !set:
			in.values[p.key], in.sources[p.key] = p.want, in.configPath
		case got != p.want:
			return fault.Input(in.sources[p.key], p.key, in.agreeHint(p.key),
				"%s does not match %s %s in %s", got, p.field, p.want, in.configPath)
		}
	}
	return nil
}

func (in *Inputs) agreeHint(key string) string {
	if in.sources[key] == SourceEnvironment {
		return fmt.Sprintf("make them agree, or unset %s in the environment (%s and %s then follow %s)",
			key, in.envFile, key, in.configPath)
	}
	return fmt.Sprintf("make them agree, or delete %s from %s to take it from %s", key, in.envFile, in.configPath)
}

// Get returns key's resolved value, or its default; "" when it has neither.
func (in *Inputs) Get(key string) string {
	if v, ok := in.values[key]; ok {
		return v
	}
	for _, k := range inputTable() {
		if k.Key != key {
			continue
		}
		if k.Default == "" && k.derive != nil {
			return k.derive(in)
		}
		return k.Default
	}
	return ""
}

// Source says where key's value came from: SourceEnvironment, the env file
// path, the cluster config path, or SourceDefault.
func (in *Inputs) Source(key string) string {
	if s, ok := in.sources[key]; ok {
		return s
	}
	return SourceDefault
}

// derivedFrom names, for a key whose default is computed from another, the
// key the user actually sets.
var derivedFrom = map[string]string{
	KeyCoderChartVersion:        KeyCoderVersion,
	"PROVISIONER_CHART_VERSION": KeyCoderChartVersion,
	KeyCoderURL:                 KeyDomain,
}

// Origin says where to point the user for key's value: the cluster config
// field (metadata.name) when cluster-config.yaml sets it, the key a derived
// default came from (CODER_VERSION for an unset CODER_CHART_VERSION), or
// the key itself in its source. Messages then name what the user gave.
func (in *Inputs) Origin(key string) (source, field string) {
	for {
		if f, ok := in.clusterFields[key]; ok {
			return in.configPath, f
		}
		from, derived := derivedFrom[key]
		if _, set := in.values[key]; set || !derived {
			return in.Source(key), key
		}
		key = from
	}
}

// Require returns an InputError naming the keys among keys that have
// neither a value nor a default.
func (in *Inputs) Require(keys ...string) error {
	var missing []string
	for _, k := range keys {
		if in.Get(k) == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fault.Input(in.envFile, strings.Join(missing, ", "),
		fmt.Sprintf("add %s=<value> to %s or set it in the environment", missing[0], in.envFile), "not set")
}

// Region is AWS_REGION.
func (in *Inputs) Region() string { return in.Get(KeyRegion) }

// ClusterName is CLUSTER_NAME, the name every resource is tagged with.
func (in *Inputs) ClusterName() string { return in.Get(KeyClusterName) }

// Domain is CODER_DOMAIN, lower-case, without a trailing dot.
func (in *Inputs) Domain() string { return in.Get(KeyDomain) }

// HostedZoneID is HOSTED_ZONE_ID without a /hostedzone/ prefix; "" when unset.
func (in *Inputs) HostedZoneID() string { return in.Get(KeyHostedZoneID) }

// CoderVersion is CODER_VERSION without a leading "v".
func (in *Inputs) CoderVersion() string { return in.Get(KeyCoderVersion) }

// CoderURL is CODER_URL, or https://CODER_DOMAIN.
func (in *Inputs) CoderURL() string { return in.Get(KeyCoderURL) }

// Users is USERS, validated as a positive number.
func (in *Inputs) Users() int {
	n, err := strconv.Atoi(in.Get(KeyUsers))
	if err != nil {
		return 0
	}
	return n
}
