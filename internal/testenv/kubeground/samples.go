package kubeground

import (
	"context"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// SampleReadyReplicas reads Deployment ns/name's ready replicas every
// 200ms, from now until stop, which returns the samples in order (a read
// that fails is skipped). Tests of a rollout use it to show that readiness
// never fell to zero while it ran.
func SampleReadyReplicas(ctx context.Context, kc kubernetes.Interface, ns, name string) (stop func() []int32) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	var samples []int32
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			if dep, err := kc.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
				samples = append(samples, dep.Status.ReadyReplicas)
			}
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() []int32 {
		close(done)
		wg.Wait()
		return samples
	}
}
