package lbcontroller

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

const testCert = "arn:aws:acm:us-west-2:123456789012:certificate/0b3c"

func service(annotations map[string]string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "coder", Name: "coder", UID: "6f1c2a9e-3b7d-4c1e-9a55-0d2f8e7b6c41", Annotations: annotations},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: ports},
	}
}

func port(name string, number, nodePort int32) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Port: number, NodePort: nodePort, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("http")}
}

// summary is "port:protocol[:cert]" per listener, for compact expectations.
func summary(ls []listenerSpec) []string {
	var out []string
	for _, l := range ls {
		item := fmt.Sprintf("%d:%s", l.Port, l.Protocol)
		if l.CertificateARN != "" {
			item += ":cert"
		}
		out = append(out, item)
	}
	return out
}

func TestDesiredListeners(t *testing.T) {
	https, http := port("https", 443, 30443), port("http", 80, 30080)
	for _, tc := range []struct {
		name        string
		annotations map[string]string
		want        []string
	}{
		{"no certificate: all TCP", nil, []string{"443:TCP", "80:TCP"}},
		{"ssl-ports by number", map[string]string{AnnotationSSLCert: testCert, AnnotationSSLPorts: "443"}, []string{"443:TLS:cert", "80:TCP"}},
		{"ssl-ports by name", map[string]string{AnnotationSSLCert: testCert, AnnotationSSLPorts: "https"}, []string{"443:TLS:cert", "80:TCP"}},
		{"ssl-ports with spaces, both", map[string]string{AnnotationSSLCert: testCert, AnnotationSSLPorts: " 443 , http "}, []string{"443:TLS:cert", "80:TLS:cert"}},
		{"ssl-ports absent: every port", map[string]string{AnnotationSSLCert: testCert}, []string{"443:TLS:cert", "80:TLS:cert"}},
		{"ssl-ports *", map[string]string{AnnotationSSLCert: testCert, AnnotationSSLPorts: "*"}, []string{"443:TLS:cert", "80:TLS:cert"}},
		{"ssl-ports without certificate", map[string]string{AnnotationSSLPorts: "443"}, []string{"443:TCP", "80:TCP"}},
		{"ssl-ports naming no port", map[string]string{AnnotationSSLCert: testCert, AnnotationSSLPorts: "8443"}, []string{"443:TCP", "80:TCP"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := desiredListeners(service(tc.annotations, https, http), "demo")
			if err != nil {
				t.Fatal(err)
			}
			if s := summary(got); !reflect.DeepEqual(s, tc.want) {
				t.Errorf("listeners = %v, want %v", s, tc.want)
			}
			for _, l := range got {
				wantNode := map[int32]int32{443: 30443, 80: 30080}[l.Port]
				if l.NodePort != wantNode {
					t.Errorf("port %d: nodePort %d, want %d", l.Port, l.NodePort, wantNode)
				}
				if l.Protocol == elbtypes.ProtocolEnumTls && (l.CertificateARN != testCert || l.SSLPolicy != defaultNLBSSLPolicy) {
					t.Errorf("port %d: cert %q policy %q", l.Port, l.CertificateARN, l.SSLPolicy)
				}
			}
		})
	}
}

func TestDesiredListenersSpecialPorts(t *testing.T) {
	udp := corev1.ServicePort{Name: "dns", Port: 53, NodePort: 30053, Protocol: corev1.ProtocolUDP}
	got, err := desiredListeners(service(map[string]string{AnnotationSSLCert: testCert, AnnotationSSLPolicy: "ELBSecurityPolicy-TLS13-1-2-2021-06"},
		udp, port("https", 443, 30443)), "demo")
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Protocol != elbtypes.ProtocolEnumUdp || got[0].CertificateARN != "" {
		t.Errorf("UDP port = %+v, want a plain UDP listener", got[0])
	}
	if got[1].SSLPolicy != "ELBSecurityPolicy-TLS13-1-2-2021-06" {
		t.Errorf("ssl policy = %q, want the annotation's", got[1].SSLPolicy)
	}

	sctp := corev1.ServicePort{Port: 9, NodePort: 30009, Protocol: corev1.ProtocolSCTP}
	if _, err := desiredListeners(service(nil, sctp), "demo"); err == nil || !strings.Contains(err.Error(), "SCTP") {
		t.Errorf("SCTP port: err = %v, want unsupported protocol", err)
	}
	noNodePort := port("http", 80, 0)
	if _, err := desiredListeners(service(nil, noNodePort), "demo"); err == nil || !strings.Contains(err.Error(), "nodePort") {
		t.Errorf("port without nodePort: err = %v", err)
	}
}

func TestSchemeFor(t *testing.T) {
	for _, tc := range []struct {
		annotations map[string]string
		want        elbtypes.LoadBalancerSchemeEnum
	}{
		{nil, elbtypes.LoadBalancerSchemeEnumInternetFacing},
		{map[string]string{AnnotationInternal: "true"}, elbtypes.LoadBalancerSchemeEnumInternal},
		{map[string]string{AnnotationInternal: "0.0.0.0/0"}, elbtypes.LoadBalancerSchemeEnumInternal},
		{map[string]string{AnnotationInternal: "false"}, elbtypes.LoadBalancerSchemeEnumInternetFacing},
		{map[string]string{AnnotationScheme: "internal"}, elbtypes.LoadBalancerSchemeEnumInternal},
		{map[string]string{AnnotationScheme: "internet-facing"}, elbtypes.LoadBalancerSchemeEnumInternetFacing},
	} {
		if got := schemeFor(service(tc.annotations)); got != tc.want {
			t.Errorf("schemeFor(%v) = %s, want %s", tc.annotations, got, tc.want)
		}
	}
}

func TestNames(t *testing.T) {
	svc := service(nil)
	if got, want := LoadBalancerName(svc), "a6f1c2a9e3b7d4c1e9a550d2f8e7b6c4"; got != want {
		t.Errorf("LoadBalancerName = %q, want %q", got, want)
	}

	a := targetGroupName("demo", "coder", "coder", 443, 30443, elbtypes.ProtocolEnumTcp)
	if !strings.HasPrefix(a, "k8s-coder-coder-") || len(a) != len("k8s-coder-coder-")+10 {
		t.Errorf("target group name %q", a)
	}
	long := targetGroupName("demo", "a-very-long-namespace", "a.very.long.service.name", 443, 30443, elbtypes.ProtocolEnumTcp)
	if len(long) > maxNameLength || !strings.HasPrefix(long, "k8s-averylon-averylon-") {
		t.Errorf("long target group name %q (%d chars)", long, len(long))
	}
	for what, other := range map[string]string{
		"cluster":   targetGroupName("prod", "coder", "coder", 443, 30443, elbtypes.ProtocolEnumTcp),
		"nodePort":  targetGroupName("demo", "coder", "coder", 443, 30444, elbtypes.ProtocolEnumTcp),
		"port":      targetGroupName("demo", "coder", "coder", 8443, 30443, elbtypes.ProtocolEnumTcp),
		"protocol":  targetGroupName("demo", "coder", "coder", 443, 30443, elbtypes.ProtocolEnumUdp),
		"namespace": targetGroupName("demo", "coder2", "coder", 443, 30443, elbtypes.ProtocolEnumTcp),
	} {
		if other == a {
			t.Errorf("changing the %s keeps target group name %q", what, a)
		}
	}
	if again := targetGroupName("demo", "coder", "coder", 443, 30443, elbtypes.ProtocolEnumTcp); again != a {
		t.Errorf("target group name not deterministic: %q vs %q", again, a)
	}
}

func TestOnePerZone(t *testing.T) {
	subnet := func(id, zone string) ec2types.Subnet {
		return ec2types.Subnet{SubnetId: aws.String(id), AvailabilityZone: aws.String(zone)}
	}
	got := onePerZone([]ec2types.Subnet{subnet("subnet-c", "us-west-2a"), subnet("subnet-b", "us-west-2b"), subnet("subnet-a", "us-west-2a")})
	if want := []string{"subnet-a", "subnet-b"}; !reflect.DeepEqual(got, want) {
		t.Errorf("onePerZone = %v, want %v", got, want)
	}
}

func TestOptionsValidation(t *testing.T) {
	err := Run(context.Background(), Options{})
	if err == nil || !strings.Contains(err.Error(), "Kube ELB EC2 Cluster") {
		t.Errorf("Run with empty options: err = %v, want the missing fields named", err)
	}
	if _, err := Start(context.Background(), Options{}); err == nil {
		t.Error("Start with empty options succeeded")
	}
}
