package coder

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
)

// Service annotations of the AWS cloud controller (the in-tree load
// balancer controller EKS runs; see decisions.md for why not the AWS Load
// Balancer Controller's "external" type).
const (
	annPrefix         = "service.beta.kubernetes.io/aws-load-balancer-"
	AnnType           = annPrefix + "type"
	AnnScheme         = annPrefix + "scheme"
	AnnSSLCert        = annPrefix + "ssl-cert"
	AnnSSLPorts       = annPrefix + "ssl-ports"
	AnnSSLPolicy      = annPrefix + "ssl-negotiation-policy"
	AnnBackend        = annPrefix + "backend-protocol"
	AnnCrossZone      = annPrefix + "cross-zone-load-balancing-enabled"
	AnnAdditionalTags = annPrefix + "additional-resource-tags"
)

// TLSPolicy is the NLB listener's TLS policy: TLS 1.3 and 1.2 only.
const TLSPolicy = "ELBSecurityPolicy-TLS13-1-2-2021-06"

// httpsPort is the only port the NLB listens on.
const httpsPort = 443

// selectorLabels pick the coderd pods, as the chart labels them.
func selectorLabels() map[string]string {
	return map[string]string{"app.kubernetes.io/name": ChartName, "app.kubernetes.io/instance": ReleaseName}
}

// wantService is the public Service: type LoadBalancer, an internet-facing
// NLB terminating TLS on 443 with the certificate and forwarding plain TCP to
// coderd's http port; externalTrafficPolicy Local keeps client addresses and
// sends traffic only to nodes running coderd.
func (s *stage) wantService(certARN string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Name: ServiceName, Namespace: names.CoderNamespace,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "coderctl", "app.kubernetes.io/part-of": ChartName},
			Annotations: map[string]string{
				AnnType:      "nlb",
				AnnScheme:    "internet-facing",
				AnnSSLCert:   certARN,
				AnnSSLPorts:  fmt.Sprint(httpsPort),
				AnnSSLPolicy: TLSPolicy,
				AnnBackend:   "tcp",
				AnnCrossZone: "true",
				// The NLB carries the deployment's tags, so `down` can prove
				// nothing of it is left behind.
				AnnAdditionalTags: tagAnnotation(s.d.Tags(Name, nil)),
			},
		},
		Spec: corev1.ServiceSpec{
			Type:                  corev1.ServiceTypeLoadBalancer,
			SessionAffinity:       corev1.ServiceAffinityNone,
			ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal,
			Selector:              selectorLabels(),
			Ports: []corev1.ServicePort{{
				Name: "https", Port: httpsPort, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("http"),
			}},
		},
	}
}

// tagAnnotation renders tags as the additional-resource-tags annotation
// ("k1=v1,k2=v2", sorted).
func tagAnnotation(tags map[string]string) string {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + tags[k]
	}
	return strings.Join(parts, ",")
}

// serviceDrift lists what of want the existing Service does not have:
// coderctl's annotations, labels, and the spec fields it sets. Fields the
// API server fills in (clusterIP, nodePorts) are not compared.
func serviceDrift(have, want *corev1.Service) []string {
	var out []string
	for k, v := range want.Annotations {
		if have.Annotations[k] != v {
			out = append(out, "annotation "+k)
		}
	}
	for k, v := range want.Labels {
		if have.Labels[k] != v {
			out = append(out, "label "+k)
		}
	}
	hs, ws := have.Spec, want.Spec
	if hs.Type != ws.Type {
		out = append(out, "type")
	}
	if hs.SessionAffinity != ws.SessionAffinity {
		out = append(out, "sessionAffinity")
	}
	if hs.ExternalTrafficPolicy != ws.ExternalTrafficPolicy {
		out = append(out, "externalTrafficPolicy")
	}
	if !reflect.DeepEqual(hs.Selector, ws.Selector) {
		out = append(out, "selector")
	}
	if !portsMatch(hs.Ports, ws.Ports) {
		out = append(out, "ports")
	}
	sort.Strings(out)
	return out
}

func portsMatch(have, want []corev1.ServicePort) bool {
	if len(have) != len(want) {
		return false
	}
	for i := range want {
		h, w := have[i], want[i]
		if h.Name != w.Name || h.Port != w.Port || h.Protocol != w.Protocol || h.TargetPort != w.TargetPort {
			return false
		}
	}
	return true
}

// converge copies want's fields onto have, keeping what the API server
// assigned (clusterIP, the nodePort of a port that stays).
func converge(have, want *corev1.Service) *corev1.Service {
	out := have.DeepCopy()
	if out.Annotations == nil {
		out.Annotations = map[string]string{}
	}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	maps.Copy(out.Annotations, want.Annotations)
	maps.Copy(out.Labels, want.Labels)
	out.Spec.Type = want.Spec.Type
	out.Spec.SessionAffinity = want.Spec.SessionAffinity
	out.Spec.ExternalTrafficPolicy = want.Spec.ExternalTrafficPolicy
	out.Spec.Selector = want.Spec.Selector
	nodePorts := map[int32]int32{}
	for _, p := range have.Spec.Ports {
		nodePorts[p.Port] = p.NodePort
	}
	out.Spec.Ports = append([]corev1.ServicePort(nil), want.Spec.Ports...)
	for i := range out.Spec.Ports {
		out.Spec.Ports[i].NodePort = nodePorts[out.Spec.Ports[i].Port]
	}
	return out
}

// Hostname is the load balancer's DNS name in the Service status, or "".
func Hostname(svc *corev1.Service) string {
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if in.Hostname != "" {
			return in.Hostname
		}
	}
	return ""
}

func (s *stage) planService(ctx context.Context) ([]engine.Action, error) {
	resource := fmt.Sprintf("service %s/%s (NLB)", names.CoderNamespace, ServiceName)
	kc, _, err := s.d.KubeClient(ctx)
	if err != nil {
		return []engine.Action{{Kind: engine.Create, Resource: resource, Reason: fmt.Sprintf("create (cluster not reachable yet: %v)", err)}}, nil
	}
	have, err := kc.CoreV1().Services(names.CoderNamespace).Get(ctx, ServiceName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return []engine.Action{{Kind: engine.Create, Resource: resource, Reason: "create an internet-facing NLB terminating TLS on 443 with " + names.KeyCertARN}}, nil
	case err != nil:
		return nil, err
	}
	certARN := s.d.State.Get(names.KeyCertARN)
	if drift := serviceDrift(have, s.wantService(certARN)); len(drift) > 0 {
		return []engine.Action{{Kind: engine.Update, Resource: resource, Reason: "differs in " + strings.Join(drift, ", ")}}, nil
	}
	return []engine.Action{{Kind: engine.Nothing, Resource: resource, Reason: "as wanted, load balancer " + valueOr(Hostname(have), "pending")}}, nil
}

func (s *stage) applyService(ctx context.Context, r engine.Reporter) error {
	certARN, err := s.d.Output(names.KeyCertARN, names.StageACM)
	if err != nil {
		return err
	}
	kc, _, err := s.d.KubeClient(ctx)
	if err != nil {
		return err
	}
	if err := ensureNamespace(ctx, kc); err != nil {
		return err
	}
	svc, err := s.ensureService(ctx, kc, s.wantService(certARN), r)
	if err != nil {
		return err
	}
	host, err := s.waitHostname(ctx, kc, svc, r)
	if err != nil {
		return err
	}
	if err := s.recordOutputs(host); err != nil {
		return err
	}
	return s.waitListener(ctx, host, certARN, r)
}

// waitListener waits until the NLB's TLS listener on 443 serves certARN:
// the cloud controller applies a new or changed Service asynchronously.
func (s *stage) waitListener(ctx context.Context, host, certARN string, r engine.Reporter) error {
	return awsx.Poll(ctx, r, "the TLS listener of "+host+" to use "+names.KeyCertARN, s.d.Opts.Wait, lbTimeout,
		func(ctx context.Context) (bool, string, error) {
			lb, err := LoadBalancerByHostname(ctx, s.d.AWS.ELB, host)
			if err != nil || lb == nil {
				return false, "load balancer not listed yet", err
			}
			found, hasCert, err := tlsListener(ctx, s.d.AWS.ELB, aws.ToString(lb.LoadBalancerArn), certARN)
			switch {
			case err != nil:
				return false, "", err
			case !found:
				return false, "no TLS listener on 443 yet", nil
			case !hasCert:
				return false, "listener has another certificate", nil
			}
			return true, "TLS on 443 with " + certARN, nil
		})
}

// recordOutputs writes NLB_HOSTNAME and, unless the user set it, CODER_URL
// (so a shell that sources the file has it) when they changed: a second
// apply leaves the state file alone.
func (s *stage) recordOutputs(host string) error {
	want := map[string]string{names.KeyNLBHostname: host}
	if s.d.Inputs.Source(config.KeyCoderURL) == config.SourceDefault {
		want[config.KeyCoderURL] = s.d.Inputs.CoderURL()
	}
	changed := map[string]string{}
	for k, v := range want {
		if s.d.State.Get(k) != v {
			changed[k] = v
		}
	}
	if len(changed) == 0 {
		return nil
	}
	return s.d.Record(changed)
}

// ensureNamespace creates the coder namespace when the secrets stage has not.
func ensureNamespace(ctx context.Context, kc kubernetes.Interface) error {
	_, err := kc.CoreV1().Namespaces().Get(ctx, names.CoderNamespace, metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		return err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: names.CoderNamespace}}
	if _, err := kc.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", names.CoderNamespace, err)
	}
	return nil
}

func (s *stage) ensureService(ctx context.Context, kc kubernetes.Interface, want *corev1.Service, r engine.Reporter) (*corev1.Service, error) {
	services := kc.CoreV1().Services(names.CoderNamespace)
	have, err := services.Get(ctx, ServiceName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		r.Progress(fmt.Sprintf("creating service %s/%s (NLB, TLS on %d)", names.CoderNamespace, ServiceName, httpsPort))
		created, err := services.Create(ctx, want, metav1.CreateOptions{})
		if err != nil {
			return nil, fmt.Errorf("create service %s/%s: %w", names.CoderNamespace, ServiceName, err)
		}
		return created, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read service %s/%s: %w", names.CoderNamespace, ServiceName, err)
	}
	drift := serviceDrift(have, want)
	if len(drift) == 0 {
		return have, nil
	}
	r.Progress(fmt.Sprintf("updating service %s/%s: %s", names.CoderNamespace, ServiceName, strings.Join(drift, ", ")))
	updated, err := services.Update(ctx, converge(have, want), metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("update service %s/%s: %w", names.CoderNamespace, ServiceName, err)
	}
	return updated, nil
}

// waitHostname waits until the cloud controller has written the NLB's DNS
// name into the Service status.
func (s *stage) waitHostname(ctx context.Context, kc kubernetes.Interface, svc *corev1.Service, r engine.Reporter) (string, error) {
	if host := Hostname(svc); host != "" {
		return host, nil
	}
	var host string
	err := awsx.Poll(ctx, r, "the load balancer of service "+names.CoderNamespace+"/"+ServiceName, s.d.Opts.Wait, lbTimeout,
		func(ctx context.Context) (bool, string, error) {
			cur, err := kc.CoreV1().Services(names.CoderNamespace).Get(ctx, ServiceName, metav1.GetOptions{})
			if err != nil {
				return false, "", err
			}
			host = Hostname(cur)
			if host == "" {
				return false, "pending" + lastServiceEvent(ctx, kc), nil
			}
			return true, host, nil
		})
	if err != nil {
		return "", fmt.Errorf("%w (the AWS cloud controller creates it: check `kubectl describe service %s -n %s`, and that the public subnets carry kubernetes.io/role/elb=1)",
			err, ServiceName, names.CoderNamespace)
	}
	return host, nil
}

// lastServiceEvent returns ": <message>" of the newest warning event on the
// Service (e.g. SyncLoadBalancerFailed), or "".
func lastServiceEvent(ctx context.Context, kc kubernetes.Interface) string {
	events, err := kc.CoreV1().Events(names.CoderNamespace).List(ctx, metav1.ListOptions{
		FieldSelector: "involvedObject.kind=Service,involvedObject.name=" + ServiceName + ",type=Warning",
	})
	if err != nil || len(events.Items) == 0 {
		return ""
	}
	sort.Slice(events.Items, func(i, j int) bool {
		return events.Items[i].LastTimestamp.Before(&events.Items[j].LastTimestamp)
	})
	return ": " + events.Items[len(events.Items)-1].Message
}

// destroyService deletes the Service, then waits until its NLB is gone in
// AWS: the VPC (and the certificate) cannot be deleted while it exists.
func (s *stage) destroyService(ctx context.Context, r engine.Reporter) error {
	kc, _, err := s.d.KubeClient(ctx)
	if err != nil {
		if !s.d.ClusterGone(ctx) {
			return err
		}
		// No cluster, so no controller to delete the NLB: delete it here.
		r.Progress("cluster is gone; deleting its load balancer directly")
		if err := s.deleteLoadBalancer(ctx); err != nil {
			return err
		}
	} else {
		err = kc.CoreV1().Services(names.CoderNamespace).Delete(ctx, ServiceName, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete service %s/%s: %w", names.CoderNamespace, ServiceName, err)
		}
	}
	if err := s.waitLoadBalancerGone(ctx, r); err != nil {
		return err
	}
	if kc != nil {
		// The controller removes its finalizer just after the NLB: wait for
		// the Service object too, so nothing of ours is left half-deleted.
		if err := s.waitServiceGone(ctx, r, kc); err != nil {
			return err
		}
	}
	unset := []string{names.KeyNLBHostname}
	if s.d.State.Get(config.KeyCoderURL) == "https://"+s.d.Inputs.Domain() {
		unset = append(unset, config.KeyCoderURL) // recorded by apply, not the user's override
	}
	return s.d.State.Unset(unset...)
}

func valueOr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// waitServiceGone polls until the Service object no longer exists.
func (s *stage) waitServiceGone(ctx context.Context, r engine.Reporter, kc kubernetes.Interface) error {
	return awsx.Poll(ctx, r, "service "+names.CoderNamespace+"/"+ServiceName+" to be deleted", s.d.Opts.Wait, lbTimeout,
		func(ctx context.Context) (bool, string, error) {
			_, err := kc.CoreV1().Services(names.CoderNamespace).Get(ctx, ServiceName, metav1.GetOptions{})
			switch {
			case apierrors.IsNotFound(err):
				return true, "gone", nil
			case err != nil:
				return false, "", err
			}
			return false, "finalizing", nil
		})
}
