package kube

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"

	clientauthv1beta1 "k8s.io/client-go/pkg/apis/clientauthentication/v1beta1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/coderctl/coderctl/internal/state"
)

// ExecEntry is one cluster of a kubeconfig whose user gets its credentials
// from an exec plugin (`coderctl token ...`), so kubectl needs no AWS CLI.
type ExecEntry struct {
	// Name names the kubeconfig's cluster and user entries. Use the cluster
	// ARN, as `aws eks update-kubeconfig` does: two clusters with the same
	// name in different accounts or regions then do not collide.
	Name string
	// Context names the context; Name when empty.
	Context string
	Access  ClusterAccess
	// Command and Args run the plugin; Env adds variables (AWS_PROFILE).
	Command string
	Args    []string
	Env     map[string]string
}

// MergeKubeconfig writes e into the kubeconfig at path with client-go's
// own (de)serializer: a new file is created with mode 0600, an existing
// one keeps every other cluster, user and context. With setCurrent the
// entry becomes the current context. It returns the context's name.
func MergeKubeconfig(path string, e ExecEntry, setCurrent bool) (string, error) {
	if e.Name == "" || e.Access.Endpoint == "" || e.Command == "" {
		return "", errors.New("kube: a kubeconfig entry needs a name, an endpoint and a command")
	}
	cfg, err := loadOrNew(path)
	if err != nil {
		return "", err
	}
	ctxName := e.Context
	if ctxName == "" {
		ctxName = e.Name
	}
	cfg.Clusters[e.Name] = &clientcmdapi.Cluster{Server: e.Access.Endpoint, CertificateAuthorityData: e.Access.CAData}
	cfg.AuthInfos[e.Name] = &clientcmdapi.AuthInfo{Exec: &clientcmdapi.ExecConfig{
		APIVersion:      clientauthv1beta1.SchemeGroupVersion.String(),
		Command:         e.Command,
		Args:            e.Args,
		Env:             execEnv(e.Env),
		InteractiveMode: clientcmdapi.NeverExecInteractiveMode,
		InstallHint:     "coderctl signs the token for this cluster: install it, or run 'coderctl kubeconfig' again with its new path",
	}}
	cfg.Contexts[ctxName] = &clientcmdapi.Context{Cluster: e.Name, AuthInfo: e.Name}
	if setCurrent {
		cfg.CurrentContext = ctxName
	}
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return "", fmt.Errorf("encode kubeconfig: %w", err)
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", fmt.Errorf("kubeconfig directory: %w", err)
		}
	}
	if err := state.WriteAtomic(path, data); err != nil {
		return "", err
	}
	return ctxName, nil
}

// loadOrNew reads the kubeconfig at path, or starts an empty one.
func loadOrNew(path string) (*clientcmdapi.Config, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return clientcmdapi.NewConfig(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read kubeconfig %s: %w", path, err)
	}
	cfg, err := clientcmd.Load(data)
	if err != nil {
		return nil, fmt.Errorf("%s is not a kubeconfig (%v): fix it or pass --file", path, err)
	}
	return cfg, nil
}

// execEnv turns a map into the plugin's environment, sorted so that
// rewriting the same entry gives the same file.
func execEnv(env map[string]string) []clientcmdapi.ExecEnvVar {
	out := make([]clientcmdapi.ExecEnvVar, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, clientcmdapi.ExecEnvVar{Name: k, Value: env[k]})
	}
	return out
}
