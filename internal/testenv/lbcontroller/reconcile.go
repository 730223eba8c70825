package lbcontroller

import (
	"context"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Finalizer is the one the Kubernetes service controller puts on Services
// of type LoadBalancer, so the load balancer is gone before the Service is.
const Finalizer = "service.kubernetes.io/load-balancer-cleanup"

// wantsLoadBalancer: type LoadBalancer, not being deleted, and no
// spec.loadBalancerClass (a class hands the Service to another controller,
// which the cloud controller respects too).
func wantsLoadBalancer(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeLoadBalancer &&
		svc.Spec.LoadBalancerClass == nil &&
		svc.DeletionTimestamp == nil
}

// ensure converges AWS to what the Service asks for and writes the NLB's
// DNS name into its status. It returns the Service as last written.
func (c *controller) ensure(ctx context.Context, svc *corev1.Service) (*corev1.Service, error) {
	listeners, err := desiredListeners(svc, c.cloud.cluster)
	if err != nil {
		return svc, err
	}
	// The finalizer goes on before anything is created, so a Service deleted
	// mid-way still gets cleaned up.
	if svc, err = c.addFinalizer(ctx, svc); err != nil {
		return svc, err
	}
	lb, err := c.ensureLoadBalancer(ctx, svc, listeners)
	if err != nil {
		return svc, err
	}
	if err := c.ensureListeners(ctx, svc, lb, listeners); err != nil {
		return svc, err
	}
	c.logf("%s/%s: synced load balancer %s", svc.Namespace, svc.Name, aws.ToString(lb.LoadBalancerName))
	return c.setIngress(ctx, svc, aws.ToString(lb.DNSName))
}

// ensureLoadBalancer finds the Service's NLB by its tags or creates it. A
// scheme change cannot be applied in place, so it replaces the NLB.
func (c *controller) ensureLoadBalancer(ctx context.Context, svc *corev1.Service, listeners []listenerSpec) (*elbtypes.LoadBalancer, error) {
	owner := ownerTags(svc, c.cloud.cluster)
	scheme := schemeFor(svc)
	lb, err := c.cloud.findLoadBalancer(ctx, owner)
	if err != nil {
		return nil, err
	}
	if lb != nil && lb.Scheme == scheme {
		return lb, nil
	}
	if lb != nil {
		c.logf("%s/%s: scheme %s -> %s: replacing load balancer %s", svc.Namespace, svc.Name, lb.Scheme, scheme, aws.ToString(lb.LoadBalancerName))
		if err := c.cloud.deleteLoadBalancer(ctx, lb); err != nil {
			return nil, err
		}
	}
	subnets, err := c.cloud.subnetsFor(ctx, scheme)
	if err != nil {
		return nil, err
	}
	// The managed security group first, as the cloud controller makes it
	// (an NLB takes its groups at creation only); then the NLB, and the
	// interfaces ELB gives it in each subnet (leftovers.go).
	sg, err := c.cloud.ensureSecurityGroup(ctx, LoadBalancerName(svc), subnets, owner, listeners)
	if err != nil {
		return nil, err
	}
	lb, err = c.cloud.createLoadBalancer(ctx, LoadBalancerName(svc), scheme, subnets, []string{sg}, owner)
	if err != nil {
		return nil, err
	}
	if err := c.cloud.createInterfaces(ctx, *lb, subnets, sg); err != nil {
		return nil, err
	}
	c.logf("%s/%s: created %s network load balancer %s (%s)", svc.Namespace, svc.Name, scheme, aws.ToString(lb.LoadBalancerName), aws.ToString(lb.DNSName))
	return lb, nil
}

// ensureListeners makes the NLB's listeners and target groups exactly the
// wanted ones: missing ones are created, different ones replaced, extra
// ones and their target groups deleted.
func (c *controller) ensureListeners(ctx context.Context, svc *corev1.Service, lb *elbtypes.LoadBalancer, want []listenerSpec) error {
	owner := ownerTags(svc, c.cloud.cluster)
	groups, err := c.cloud.ownedTargetGroups(ctx, owner)
	if err != nil {
		return err
	}
	tgARN := map[string]string{} // target group name -> ARN
	for _, l := range want {
		tg, ok := groups[l.TargetGroup]
		if !ok {
			if tg, err = c.cloud.createTargetGroup(ctx, l, aws.ToString(lb.VpcId), owner); err != nil {
				return err
			}
		}
		tgARN[l.TargetGroup] = aws.ToString(tg.TargetGroupArn)
	}

	lbARN := aws.ToString(lb.LoadBalancerArn)
	have, err := c.cloud.listeners(ctx, lbARN)
	if err != nil {
		return err
	}
	kept := map[int32]bool{}
	for _, existing := range have {
		i := slices.IndexFunc(want, func(l listenerSpec) bool { return l.Port == aws.ToInt32(existing.Port) })
		if i >= 0 && listenerMatches(existing, want[i], tgARN[want[i].TargetGroup]) {
			kept[want[i].Port] = true
			continue
		}
		// Replace rather than modify: ModifyListener cannot change every
		// protocol everywhere (moto refuses TLS), and a test double may
		// afford the moment without a listener.
		if err := c.cloud.deleteListener(ctx, aws.ToString(existing.ListenerArn)); err != nil {
			return err
		}
	}
	for _, l := range want {
		if !kept[l.Port] {
			if err := c.cloud.createListener(ctx, lbARN, l, tgARN[l.TargetGroup]); err != nil {
				return err
			}
		}
	}
	for name, tg := range groups {
		if _, used := tgARN[name]; !used {
			if err := c.cloud.deleteTargetGroup(ctx, aws.ToString(tg.TargetGroupArn)); err != nil {
				return err
			}
		}
	}
	return nil
}

// listenerMatches compares what the cloud has with what the Service wants.
func listenerMatches(have elbtypes.Listener, want listenerSpec, tgARN string) bool {
	if have.Protocol != want.Protocol || len(have.DefaultActions) != 1 ||
		aws.ToString(have.DefaultActions[0].TargetGroupArn) != tgARN {
		return false
	}
	if want.Protocol != elbtypes.ProtocolEnumTls {
		return true
	}
	return len(have.Certificates) == 1 &&
		aws.ToString(have.Certificates[0].CertificateArn) == want.CertificateARN &&
		aws.ToString(have.SslPolicy) == want.SSLPolicy
}

// cleanup deletes the Service's NLB, listeners and target groups, clears a
// stale status, and finally lets the Service go by removing the finalizer.
func (c *controller) cleanup(ctx context.Context, svc *corev1.Service) (*corev1.Service, error) {
	owner := ownerTags(svc, c.cloud.cluster)
	lb, err := c.cloud.findLoadBalancer(ctx, owner)
	if err != nil {
		return svc, err
	}
	if lb != nil {
		if err := c.cloud.deleteLoadBalancer(ctx, lb); err != nil {
			return svc, err
		}
		c.logf("%s/%s: deleted load balancer %s", svc.Namespace, svc.Name, aws.ToString(lb.LoadBalancerName))
	}
	groups, err := c.cloud.ownedTargetGroups(ctx, owner)
	if err != nil {
		return svc, err
	}
	for _, tg := range groups {
		if err := c.cloud.deleteTargetGroup(ctx, aws.ToString(tg.TargetGroupArn)); err != nil {
			return svc, err
		}
	}
	// The NLB's interfaces are not released (leftovers.go), so its group
	// stays in use: given up, and left for the teardown.
	sg, users, err := c.cloud.deleteSecurityGroup(ctx, owner)
	switch {
	case err != nil:
		return svc, err
	case len(users) > 0:
		c.logf("%s/%s: security group %s still used by %v (the NLB's interfaces, not released yet): left in place", svc.Namespace, svc.Name, sg, users)
	case sg != "":
		c.logf("%s/%s: deleted security group %s", svc.Namespace, svc.Name, sg)
	}
	if svc.DeletionTimestamp == nil {
		// The Service stays (its type changed): it must not keep pointing
		// at a load balancer that no longer exists.
		if svc, err = c.setIngress(ctx, svc, ""); err != nil {
			return svc, err
		}
	}
	return c.removeFinalizer(ctx, svc)
}

func (c *controller) addFinalizer(ctx context.Context, svc *corev1.Service) (*corev1.Service, error) {
	if slices.Contains(svc.Finalizers, Finalizer) {
		return svc, nil
	}
	updated := svc.DeepCopy()
	updated.Finalizers = append(updated.Finalizers, Finalizer)
	out, err := c.kube.CoreV1().Services(svc.Namespace).Update(ctx, updated, metav1.UpdateOptions{})
	if err != nil {
		return svc, fmt.Errorf("add finalizer: %w", err)
	}
	return out, nil
}

func (c *controller) removeFinalizer(ctx context.Context, svc *corev1.Service) (*corev1.Service, error) {
	if !slices.Contains(svc.Finalizers, Finalizer) {
		return svc, nil
	}
	updated := svc.DeepCopy()
	updated.Finalizers = slices.DeleteFunc(updated.Finalizers, func(f string) bool { return f == Finalizer })
	out, err := c.kube.CoreV1().Services(svc.Namespace).Update(ctx, updated, metav1.UpdateOptions{})
	if err != nil {
		return svc, fmt.Errorf("remove finalizer: %w", err)
	}
	return out, nil
}

// setIngress writes hostname as the only ingress point ("" clears it).
func (c *controller) setIngress(ctx context.Context, svc *corev1.Service, hostname string) (*corev1.Service, error) {
	var want []corev1.LoadBalancerIngress
	if hostname != "" {
		want = []corev1.LoadBalancerIngress{{Hostname: hostname}}
	}
	have := svc.Status.LoadBalancer.Ingress
	if len(have) == len(want) && (len(want) == 0 || (have[0].Hostname == hostname && have[0].IP == "")) {
		return svc, nil
	}
	updated := svc.DeepCopy()
	updated.Status.LoadBalancer.Ingress = want
	out, err := c.kube.CoreV1().Services(svc.Namespace).UpdateStatus(ctx, updated, metav1.UpdateOptions{})
	if err != nil {
		return svc, fmt.Errorf("update status: %w", err)
	}
	return out, nil
}
