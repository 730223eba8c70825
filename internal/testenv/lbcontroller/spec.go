package lbcontroller

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	corev1 "k8s.io/api/core/v1"
)

// The Service annotations the AWS cloud controller reads, and the one from
// the AWS Load Balancer Controller that people also use to pick the scheme.
const (
	AnnotationSSLCert   = "service.beta.kubernetes.io/aws-load-balancer-ssl-cert"
	AnnotationSSLPorts  = "service.beta.kubernetes.io/aws-load-balancer-ssl-ports"
	AnnotationSSLPolicy = "service.beta.kubernetes.io/aws-load-balancer-ssl-negotiation-policy"
	AnnotationInternal  = "service.beta.kubernetes.io/aws-load-balancer-internal"
	AnnotationScheme    = "service.beta.kubernetes.io/aws-load-balancer-scheme"
)

const (
	// defaultNLBSSLPolicy is what the cloud controller puts on TLS
	// listeners when the Service names no policy.
	defaultNLBSSLPolicy = "ELBSecurityPolicy-2016-08"
	// AWS limits load balancer and target group names to 32 characters.
	maxNameLength = 32
)

// Tags the controller puts on every load balancer and target group it owns.
const (
	TagServiceName   = "kubernetes.io/service-name"
	tagClusterPrefix = "kubernetes.io/cluster/"
	tagOwned         = "owned"
	TagRoleELB       = "kubernetes.io/role/elb"
	TagRoleInternal  = "kubernetes.io/role/internal-elb"
)

// ClusterTag is the tag key that marks resources (and subnets) of a cluster.
func ClusterTag(cluster string) string { return tagClusterPrefix + cluster }

// listenerSpec is one NLB listener a Service port asks for.
type listenerSpec struct {
	Port           int32
	Protocol       elbtypes.ProtocolEnum // TCP, TLS or UDP
	CertificateARN string                // TLS only
	SSLPolicy      string                // TLS only
	NodePort       int32                 // the target group's port
	TargetGroup    string                // target group name
}

// desiredListeners maps each Service port to a listener: TLS with the
// ssl-cert certificate when the port is listed in ssl-ports (by number or
// name; all ports when ssl-ports is absent or "*"), TCP otherwise, UDP for
// UDP ports. Each forwards to a TCP target group on the port's nodePort.
func desiredListeners(svc *corev1.Service, cluster string) ([]listenerSpec, error) {
	cert := strings.TrimSpace(svc.Annotations[AnnotationSSLCert])
	sslPorts := parseSSLPorts(svc.Annotations[AnnotationSSLPorts])
	policy := valueOr(strings.TrimSpace(svc.Annotations[AnnotationSSLPolicy]), defaultNLBSSLPolicy)
	out := make([]listenerSpec, 0, len(svc.Spec.Ports))
	for _, p := range svc.Spec.Ports {
		if p.NodePort == 0 {
			return nil, fmt.Errorf("port %d has no nodePort (spec.allocateLoadBalancerNodePorts=false is not supported)", p.Port)
		}
		l := listenerSpec{Port: p.Port, Protocol: elbtypes.ProtocolEnumTcp, NodePort: p.NodePort}
		switch {
		case p.Protocol == corev1.ProtocolUDP:
			l.Protocol = elbtypes.ProtocolEnumUdp
		case p.Protocol != "" && p.Protocol != corev1.ProtocolTCP:
			return nil, fmt.Errorf("port %d: protocol %s is not supported by a network load balancer", p.Port, p.Protocol)
		case cert != "" && sslPorts.covers(p):
			l.Protocol, l.CertificateARN, l.SSLPolicy = elbtypes.ProtocolEnumTls, cert, policy
		}
		l.TargetGroup = targetGroupName(cluster, svc.Namespace, svc.Name, p.Port, p.NodePort, targetProtocol(l.Protocol))
		out = append(out, l)
	}
	return out, nil
}

// targetProtocol is the target group protocol behind a listener protocol:
// TLS terminates at the load balancer and reaches the nodes as TCP.
func targetProtocol(listener elbtypes.ProtocolEnum) elbtypes.ProtocolEnum {
	if listener == elbtypes.ProtocolEnumUdp {
		return elbtypes.ProtocolEnumUdp
	}
	return elbtypes.ProtocolEnumTcp
}

// sslPortSet is the parsed ssl-ports annotation; nil means every port.
type sslPortSet map[string]bool

func parseSSLPorts(annotation string) sslPortSet {
	annotation = strings.TrimSpace(annotation)
	if annotation == "" {
		return nil
	}
	set := sslPortSet{}
	for _, item := range strings.Split(annotation, ",") {
		if item = strings.TrimSpace(item); item != "" {
			set[item] = true
		}
	}
	if set["*"] {
		return nil
	}
	return set
}

func (s sslPortSet) covers(p corev1.ServicePort) bool {
	if s == nil {
		return true
	}
	return s[strconv.Itoa(int(p.Port))] || (p.Name != "" && s[p.Name])
}

// schemeFor reads the legacy internal annotation (any value but "false"
// means internal, as the cloud controller reads it) and the scheme
// annotation.
func schemeFor(svc *corev1.Service) elbtypes.LoadBalancerSchemeEnum {
	if v, ok := svc.Annotations[AnnotationInternal]; ok && !strings.EqualFold(strings.TrimSpace(v), "false") {
		return elbtypes.LoadBalancerSchemeEnumInternal
	}
	if strings.EqualFold(strings.TrimSpace(svc.Annotations[AnnotationScheme]), string(elbtypes.LoadBalancerSchemeEnumInternal)) {
		return elbtypes.LoadBalancerSchemeEnumInternal
	}
	return elbtypes.LoadBalancerSchemeEnumInternetFacing
}

// LoadBalancerName is the name the Kubernetes cloud provider gives a
// Service's load balancer: "a" followed by the UID without dashes, cut to
// the 32 characters AWS allows.
func LoadBalancerName(svc *corev1.Service) string {
	return truncate("a"+strings.ReplaceAll(string(svc.UID), "-", ""), maxNameLength)
}

var notNameChars = regexp.MustCompile(`[^a-zA-Z0-9]`)

// targetGroupName is "k8s-<ns>-<name>-<hash>" within AWS's 32 characters;
// the hash covers everything that makes the group different, so a changed
// nodePort gets a new group instead of a silently re-pointed one.
func targetGroupName(cluster, namespace, name string, port, nodePort int32, protocol elbtypes.ProtocolEnum) string {
	sum := sha256.Sum256([]byte(strings.Join([]string{
		cluster, namespace, name, strconv.Itoa(int(port)), strconv.Itoa(int(nodePort)), string(protocol),
	}, "/")))
	// 4 + 8 + 1 + 8 + 1 + 10 = 32 characters at most.
	return fmt.Sprintf("k8s-%s-%s-%s",
		truncate(notNameChars.ReplaceAllString(namespace, ""), 8),
		truncate(notNameChars.ReplaceAllString(name, ""), 8),
		hex.EncodeToString(sum[:])[:10])
}

// ownerTags are the tags that say which Service of which cluster owns a
// load balancer or target group.
func ownerTags(svc *corev1.Service, cluster string) map[string]string {
	return map[string]string{
		TagServiceName:      svc.Namespace + "/" + svc.Name,
		ClusterTag(cluster): tagOwned,
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func valueOr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
