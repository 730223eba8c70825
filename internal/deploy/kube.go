package deploy

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/coderctl/coderctl/internal/helmx"
)

// ErrNoKube says the run has no way to reach the cluster: no factory, or
// one that built nothing. Every stage that works inside the cluster reports
// it the same way.
var ErrNoKube = errors.New("no Kubernetes access configured")

// KubeClient returns the cluster's client and its REST configuration (nil
// when the factory gave none). The factory's own error (the cluster not
// reachable yet) is returned as it is, for the caller to word.
func (d *Deps) KubeClient(ctx context.Context) (kubernetes.Interface, *rest.Config, error) {
	if d.Kube == nil {
		return nil, nil, ErrNoKube
	}
	kc, rc, err := d.Kube(ctx)
	if err != nil {
		return nil, nil, err
	}
	if kc == nil {
		return nil, nil, ErrNoKube
	}
	return kc, rc, nil
}

// Helm returns a helm client for the cluster, with its repository cache in
// HelmCacheDir (helmx's default when empty).
func (d *Deps) Helm(ctx context.Context) (*helmx.Client, error) {
	_, rc, err := d.KubeClient(ctx)
	if err != nil {
		return nil, err
	}
	if rc == nil {
		return nil, ErrNoKube
	}
	return helmx.New(rc, helmx.Options{CacheDir: d.HelmCacheDir})
}

// UninstallRelease removes a helm release, for a destroy step. When the EKS
// cluster itself is gone the release went with it: it says so instead of
// failing forever on a cluster that no longer exists.
func (d *Deps) UninstallRelease(ctx context.Context, progress func(string), namespace, release string) error {
	helm, err := d.Helm(ctx)
	if err != nil {
		if d.ClusterGone(ctx) {
			progress(fmt.Sprintf("EKS cluster %s is gone, and release %s with it", d.Deployment(), release))
			return nil
		}
		return err
	}
	progress(fmt.Sprintf("uninstalling release %s/%s", namespace, release))
	return helm.Uninstall(ctx, release, namespace, true)
}
