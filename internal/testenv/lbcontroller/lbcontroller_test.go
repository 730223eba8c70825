package lbcontroller

import (
	"bytes"
	"context"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	acmtypes "github.com/aws/aws-sdk-go-v2/service/acm/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/coderctl/coderctl/internal/testenv/kubeground"
	"github.com/coderctl/coderctl/internal/testenv/moto"
)

// TestMain stops the shared control plane. moto is started per test (see
// newGround) because the moto package can stop its shared server only from
// its own Main, and a TestMain can run only one of the two Mains.
func TestMain(m *testing.M) { kubeground.Main(m) }

const (
	region  = "us-west-2"
	cluster = "lbtest"
)

// ground is one test's world: a fresh moto with a VPC whose subnets carry
// the EKS/ELB tags, a decoy VPC, an ACM certificate, and a namespace on the
// shared control plane.
type ground struct {
	kube    kubernetes.Interface
	elb     *elb.Client
	ec2     *ec2.Client
	vpcID   string
	public  []string // tagged kubernetes.io/role/elb=1, one per zone
	private []string // tagged kubernetes.io/role/internal-elb=1
	certARN string
	ns      string
	log     *syncBuffer
}

func newGround(t *testing.T, withSubnets bool) *ground {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	kube := kubeground.Require(t).Client()
	server, err := moto.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(server.Stop)
	cfg, err := server.AWSConfig(ctx, region)
	if err != nil {
		t.Fatal(err)
	}
	g := &ground{kube: kube, elb: elb.NewFromConfig(cfg), ec2: ec2.NewFromConfig(cfg), log: &syncBuffer{}}
	g.vpcID = g.createVPC(ctx, t, "10.0.0.0/16")
	if withSubnets {
		g.public = []string{
			g.createSubnet(ctx, t, g.vpcID, "10.0.0.0/24", region+"a", TagRoleELB),
			g.createSubnet(ctx, t, g.vpcID, "10.0.1.0/24", region+"b", TagRoleELB),
		}
		g.private = []string{
			g.createSubnet(ctx, t, g.vpcID, "10.0.10.0/24", region+"a", TagRoleInternal),
			g.createSubnet(ctx, t, g.vpcID, "10.0.11.0/24", region+"b", TagRoleInternal),
		}
		// A public subnet of another VPC must never be picked.
		decoy := g.createVPC(ctx, t, "10.1.0.0/16")
		g.createSubnet(ctx, t, decoy, "10.1.0.0/24", region+"c", TagRoleELB)
	}
	cert, err := acm.NewFromConfig(cfg).RequestCertificate(ctx, &acm.RequestCertificateInput{
		DomainName:              aws.String("coder.example.test"),
		SubjectAlternativeNames: []string{"*.coder.example.test"},
		ValidationMethod:        acmtypes.ValidationMethodDns,
	})
	if err != nil {
		t.Fatal(err)
	}
	g.certARN = aws.ToString(cert.CertificateArn)
	ns, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "lb-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	g.ns = ns.Name
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("controller log:\n%s", g.log.String())
		}
	})
	return g
}

func (g *ground) createVPC(ctx context.Context, t *testing.T, cidr string) string {
	t.Helper()
	out, err := g.ec2.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String(cidr)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.Vpc.VpcId)
}

func (g *ground) createSubnet(ctx context.Context, t *testing.T, vpc, cidr, zone, role string) string {
	t.Helper()
	out, err := g.ec2.CreateSubnet(ctx, &ec2.CreateSubnetInput{
		VpcId: aws.String(vpc), CidrBlock: aws.String(cidr), AvailabilityZone: aws.String(zone),
		TagSpecifications: []ec2types.TagSpecification{{
			ResourceType: ec2types.ResourceTypeSubnet,
			Tags: []ec2types.Tag{
				{Key: aws.String(role), Value: aws.String("1")},
				{Key: aws.String(ClusterTag(cluster)), Value: aws.String("shared")},
			},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.Subnet.SubnetId)
}

// start runs a controller for the rest of the test (or until stop).
func (g *ground) start(t *testing.T) (stop func()) {
	t.Helper()
	stop, err := Start(context.Background(), Options{
		Kube: g.kube, ELB: g.elb, EC2: g.ec2, Cluster: cluster, VPCID: g.vpcID,
		Interval: 100 * time.Millisecond, Log: g.log,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return stop
}

// coderService is shaped like the Service the coder stage makes: TLS on 443
// with the ACM certificate, plain TCP on 80, both to the pods' http port.
func (g *ground) coderService(annotations map[string]string) *corev1.Service {
	svc := service(annotations, port("https", 443, 0), port("http", 80, 0))
	svc.Namespace, svc.UID = g.ns, ""
	svc.Spec.Selector = map[string]string{"app.kubernetes.io/name": "coder"}
	return svc
}

func (g *ground) create(ctx context.Context, t *testing.T, svc *corev1.Service) *corev1.Service {
	t.Helper()
	out, err := g.kube.CoreV1().Services(g.ns).Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// waitService polls the Service until done says so.
func (g *ground) waitService(ctx context.Context, t *testing.T, name, what string, done func(*corev1.Service, error) bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		return done(g.kube.CoreV1().Services(g.ns).Get(ctx, name, metav1.GetOptions{})), nil
	})
	if err != nil {
		t.Fatalf("service %s/%s: waiting for %s: %v", g.ns, name, what, err)
	}
}

func (g *ground) waitHostname(ctx context.Context, t *testing.T, name string) string {
	t.Helper()
	var hostname string
	g.waitService(ctx, t, name, "a load balancer hostname", func(s *corev1.Service, err error) bool {
		if err == nil && len(s.Status.LoadBalancer.Ingress) == 1 {
			hostname = s.Status.LoadBalancer.Ingress[0].Hostname
		}
		return hostname != ""
	})
	return hostname
}

// loadBalancers returns every NLB in moto.
func (g *ground) loadBalancers(ctx context.Context, t *testing.T) []elbtypes.LoadBalancer {
	t.Helper()
	out, err := g.elb.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{})
	if err != nil {
		t.Fatal(err)
	}
	return out.LoadBalancers
}

func (g *ground) listenersByPort(ctx context.Context, t *testing.T, lbARN string) map[int32]elbtypes.Listener {
	t.Helper()
	out, err := g.elb.DescribeListeners(ctx, &elb.DescribeListenersInput{LoadBalancerArn: aws.String(lbARN)})
	if err != nil {
		t.Fatal(err)
	}
	byPort := map[int32]elbtypes.Listener{}
	for _, l := range out.Listeners {
		byPort[aws.ToInt32(l.Port)] = l
	}
	return byPort
}

func (g *ground) targetGroups(ctx context.Context, t *testing.T) []elbtypes.TargetGroup {
	t.Helper()
	out, err := g.elb.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{})
	if err != nil {
		t.Fatal(err)
	}
	return out.TargetGroups
}

func (g *ground) tags(ctx context.Context, t *testing.T, arn string) map[string]string {
	t.Helper()
	out, err := g.elb.DescribeTags(ctx, &elb.DescribeTagsInput{ResourceArns: []string{arn}})
	if err != nil {
		t.Fatal(err)
	}
	tags := map[string]string{}
	for _, d := range out.TagDescriptions {
		for _, tag := range d.Tags {
			tags[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
		}
	}
	return tags
}

// TestTLSServiceLifecycle walks the Service the coder stage makes through
// creation, a controller restart, two spec changes and deletion, checking
// moto after each step.
func TestTLSServiceLifecycle(t *testing.T) {
	g := newGround(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stop := g.start(t)

	svc := g.create(ctx, t, g.coderService(map[string]string{
		AnnotationSSLCert:  g.certARN,
		AnnotationSSLPorts: "443",
		"service.beta.kubernetes.io/aws-load-balancer-type": "nlb",
	}))
	hostname := g.waitHostname(ctx, t, svc.Name)
	svc, err := g.kube.CoreV1().Services(g.ns).Get(ctx, svc.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nodePort := map[int32]int32{}
	for _, p := range svc.Spec.Ports {
		nodePort[p.Port] = p.NodePort
	}

	lbs := g.loadBalancers(ctx, t)
	if len(lbs) != 1 {
		t.Fatalf("moto holds %d load balancers, want 1", len(lbs))
	}
	lb := lbs[0]
	lbARN := aws.ToString(lb.LoadBalancerArn)
	t.Run("network load balancer", func(t *testing.T) {
		if lb.Type != elbtypes.LoadBalancerTypeEnumNetwork || lb.Scheme != elbtypes.LoadBalancerSchemeEnumInternetFacing {
			t.Errorf("type %s scheme %s, want network internet-facing", lb.Type, lb.Scheme)
		}
		if aws.ToString(lb.DNSName) != hostname {
			t.Errorf("status hostname %q, NLB DNS name %q", hostname, aws.ToString(lb.DNSName))
		}
		wantName := "a" + strings.ReplaceAll(string(svc.UID), "-", "")[:31]
		if aws.ToString(lb.LoadBalancerName) != wantName {
			t.Errorf("name %q, want %q (from the UID)", aws.ToString(lb.LoadBalancerName), wantName)
		}
		var subnets []string
		for _, az := range lb.AvailabilityZones {
			subnets = append(subnets, aws.ToString(az.SubnetId))
		}
		sort.Strings(subnets)
		want := append([]string(nil), g.public...)
		sort.Strings(want)
		if strings.Join(subnets, ",") != strings.Join(want, ",") {
			t.Errorf("subnets %v, want the public ones %v", subnets, want)
		}
		tags := g.tags(ctx, t, lbARN)
		if tags[TagServiceName] != g.ns+"/coder" || tags[ClusterTag(cluster)] != "owned" {
			t.Errorf("tags %v, want %s=%s/coder and %s=owned", tags, TagServiceName, g.ns, ClusterTag(cluster))
		}
		if !hasFinalizer(svc) {
			t.Errorf("finalizers %v, want %s", svc.Finalizers, Finalizer)
		}
	})

	listeners := g.listenersByPort(ctx, t, lbARN)
	t.Run("listeners follow the annotations", func(t *testing.T) {
		if len(listeners) != 2 {
			t.Fatalf("listeners on ports %v, want 443 and 80", keys(listeners))
		}
		tls, tcp := listeners[443], listeners[80]
		if tls.Protocol != elbtypes.ProtocolEnumTls || len(tls.Certificates) != 1 || aws.ToString(tls.Certificates[0].CertificateArn) != g.certARN {
			t.Errorf("443: protocol %s certificates %v, want TLS with exactly %s", tls.Protocol, certARNs(tls), g.certARN)
		}
		if tcp.Protocol != elbtypes.ProtocolEnumTcp || len(tcp.Certificates) != 0 {
			t.Errorf("80: protocol %s certificates %v, want plain TCP", tcp.Protocol, certARNs(tcp))
		}
		groups := map[string]elbtypes.TargetGroup{}
		for _, tg := range g.targetGroups(ctx, t) {
			groups[aws.ToString(tg.TargetGroupArn)] = tg
		}
		for p, l := range listeners {
			tg, ok := groups[aws.ToString(l.DefaultActions[0].TargetGroupArn)]
			if !ok || tg.Protocol != elbtypes.ProtocolEnumTcp || aws.ToInt32(tg.Port) != nodePort[p] || aws.ToString(tg.VpcId) != g.vpcID {
				t.Errorf("listener %d forwards to %+v, want a TCP group on nodePort %d in %s", p, tg, nodePort[p], g.vpcID)
			}
		}
	})

	t.Run("a restarted controller adopts instead of recreating", func(t *testing.T) {
		stop()
		g.log.Reset()
		stop2 := g.start(t)
		time.Sleep(500 * time.Millisecond) // several passes
		stop2()
		if lbs := g.loadBalancers(ctx, t); len(lbs) != 1 || aws.ToString(lbs[0].LoadBalancerArn) != lbARN {
			t.Fatalf("after restart: %d load balancers, want the original %s", len(lbs), lbARN)
		}
		after := g.listenersByPort(ctx, t, lbARN)
		for p, l := range listeners {
			if aws.ToString(after[p].ListenerArn) != aws.ToString(l.ListenerArn) {
				t.Errorf("listener %d was replaced after a restart", p)
			}
		}
		if log := g.log.String(); strings.Contains(log, "created") || !strings.Contains(log, "synced load balancer") {
			t.Errorf("restarted controller should sync without creating anything; its log:\n%s", log)
		}
	})
	g.start(t)

	t.Run("ssl-ports change re-creates the listener as TLS", func(t *testing.T) {
		update(ctx, t, g.kube, g.ns, svc.Name, func(s *corev1.Service) { s.Annotations[AnnotationSSLPorts] = "443,http" })
		waitFor(ctx, t, "port 80 to become TLS", func() bool {
			l := g.listenersByPort(ctx, t, lbARN)[80]
			return l.Protocol == elbtypes.ProtocolEnumTls && len(l.Certificates) == 1 && aws.ToString(l.Certificates[0].CertificateArn) == g.certARN
		})
	})

	t.Run("a removed port loses its listener and target group", func(t *testing.T) {
		update(ctx, t, g.kube, g.ns, svc.Name, func(s *corev1.Service) { s.Spec.Ports = s.Spec.Ports[:1] })
		waitFor(ctx, t, "only the 443 listener", func() bool {
			l := g.listenersByPort(ctx, t, lbARN)
			_, has443 := l[443]
			return len(l) == 1 && has443
		})
		waitFor(ctx, t, "one target group", func() bool { return len(g.targetGroups(ctx, t)) == 1 })
	})

	t.Run("deleting the Service deletes the NLB first", func(t *testing.T) {
		if err := g.kube.CoreV1().Services(g.ns).Delete(ctx, svc.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		g.waitService(ctx, t, svc.Name, "deletion", func(_ *corev1.Service, err error) bool { return apierrors.IsNotFound(err) })
		if lbs := g.loadBalancers(ctx, t); len(lbs) != 0 {
			t.Errorf("after deletion moto still holds %d load balancers", len(lbs))
		}
		if tgs := g.targetGroups(ctx, t); len(tgs) != 0 {
			t.Errorf("after deletion moto still holds %d target groups", len(tgs))
		}
	})
}

// TestInternalServiceThenClusterIP: the internal annotation puts the NLB in
// the internal-elb subnets; turning the Service into a ClusterIP one deletes
// the NLB, clears the status and releases the finalizer.
func TestInternalServiceThenClusterIP(t *testing.T) {
	g := newGround(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	g.start(t)

	svc := g.create(ctx, t, g.coderService(map[string]string{AnnotationInternal: "true"}))
	g.waitHostname(ctx, t, svc.Name)
	lbs := g.loadBalancers(ctx, t)
	if len(lbs) != 1 || lbs[0].Scheme != elbtypes.LoadBalancerSchemeEnumInternal {
		t.Fatalf("load balancers %+v, want one internal", lbs)
	}
	for _, az := range lbs[0].AvailabilityZones {
		if !contains(g.private, aws.ToString(az.SubnetId)) {
			t.Errorf("internal NLB in subnet %s, want only %v", aws.ToString(az.SubnetId), g.private)
		}
	}
	for p, l := range g.listenersByPort(ctx, t, aws.ToString(lbs[0].LoadBalancerArn)) {
		if l.Protocol != elbtypes.ProtocolEnumTcp {
			t.Errorf("listener %d is %s without a certificate annotation, want TCP", p, l.Protocol)
		}
	}

	update(ctx, t, g.kube, g.ns, svc.Name, func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeClusterIP
		for i := range s.Spec.Ports {
			s.Spec.Ports[i].NodePort = 0
		}
	})
	g.waitService(ctx, t, svc.Name, "the finalizer to go", func(s *corev1.Service, err error) bool {
		return err == nil && !hasFinalizer(s) && len(s.Status.LoadBalancer.Ingress) == 0
	})
	if lbs := g.loadBalancers(ctx, t); len(lbs) != 0 {
		t.Errorf("ClusterIP service still has %d load balancers", len(lbs))
	}
}

// TestMissingSubnetsIsReportedThenRecovers: without tagged subnets the
// Service gets a Warning event saying which tag is missing and no hostname;
// once the subnets are tagged the next pass creates the NLB.
func TestMissingSubnetsIsReportedThenRecovers(t *testing.T) {
	g := newGround(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	g.start(t)

	svc := g.create(ctx, t, g.coderService(nil))
	var event corev1.Event
	waitFor(ctx, t, "a SyncLoadBalancerFailed event", func() bool {
		events, err := g.kube.CoreV1().Events(g.ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events.Items {
			if e.InvolvedObject.Name == svc.Name && e.Reason == "SyncLoadBalancerFailed" {
				event = e
				return true
			}
		}
		return false
	})
	if event.Type != corev1.EventTypeWarning || !strings.Contains(event.Message, TagRoleELB+"=1") {
		t.Errorf("event %s %q, want a Warning naming the %s tag", event.Type, event.Message, TagRoleELB)
	}
	current, err := g.kube.CoreV1().Services(g.ns).Get(ctx, svc.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(current.Status.LoadBalancer.Ingress) != 0 {
		t.Errorf("status %+v without any load balancer", current.Status.LoadBalancer)
	}

	g.createSubnet(ctx, t, g.vpcID, "10.0.0.0/24", region+"a", TagRoleELB)
	g.waitHostname(ctx, t, svc.Name)
	if lbs := g.loadBalancers(ctx, t); len(lbs) != 1 {
		t.Errorf("after tagging a subnet: %d load balancers, want 1", len(lbs))
	}
}

// update applies change to the current Service, retrying on conflicts with
// the controller's own writes.
func update(ctx context.Context, t *testing.T, kube kubernetes.Interface, ns, name string, change func(*corev1.Service)) {
	t.Helper()
	for attempt := 0; ; attempt++ {
		svc, err := kube.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		change(svc)
		_, err = kube.CoreV1().Services(ns).Update(ctx, svc, metav1.UpdateOptions{})
		if err == nil {
			return
		}
		if !apierrors.IsConflict(err) || attempt > 10 {
			t.Fatal(err)
		}
	}
}

func waitFor(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return cond(), nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func keys(m map[int32]elbtypes.Listener) []int32 {
	var out []int32
	for k := range m {
		out = append(out, k)
	}
	return out
}

func certARNs(l elbtypes.Listener) []string {
	var out []string
	for _, c := range l.Certificates {
		out = append(out, aws.ToString(c.CertificateArn))
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// syncBuffer is a log sink the controller goroutine and the test share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *syncBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Reset()
}
