package secrets

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/coderctl/coderctl/internal/deploy"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/helmx"
)

// kubeAccess is what the Kubernetes steps use: typed and dynamic clients
// and a helm client, built once per run.
type kubeAccess struct {
	kc   kubernetes.Interface
	dc   dynamic.Interface
	helm *helmx.Client
}

// kubeClients returns the run's clients, building them on first success;
// a failure (the cluster not created yet) is not cached.
func (s *stage) kubeClients(ctx context.Context) (*kubeAccess, error) {
	s.kubeMu.Lock()
	defer s.kubeMu.Unlock()
	if s.kube != nil {
		return s.kube, nil
	}
	kc, rc, err := s.d.KubeClient(ctx)
	switch {
	case errors.Is(err, deploy.ErrNoKube):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("reach the cluster: %w", err)
	case rc == nil:
		return nil, deploy.ErrNoKube
	}
	dc, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	hc, err := helmx.New(rc, helmx.Options{CacheDir: s.d.HelmCacheDir})
	if err != nil {
		return nil, err
	}
	s.kube = &kubeAccess{kc: kc, dc: dc, helm: hc}
	return s.kube, nil
}

// kubeForDestroy returns the clients, or nil when the EKS cluster itself is
// gone: what this stage put in it went with it, and destroy must not fail
// forever on a cluster that no longer exists.
func (s *stage) kubeForDestroy(ctx context.Context, r engine.Reporter, what string) (*kubeAccess, error) {
	k, err := s.kubeClients(ctx)
	if err == nil {
		return k, nil
	}
	if s.d.ClusterGone(ctx) {
		r.Progress(fmt.Sprintf("EKS cluster %s is gone, and %s with it", s.d.Deployment(), what))
		return nil, nil
	}
	return nil, err
}
