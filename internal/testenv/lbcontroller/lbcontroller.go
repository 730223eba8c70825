// Package lbcontroller plays the AWS cloud controller for Services of type
// LoadBalancer on the proving ground, against moto: for each such Service it
// creates a network load balancer with a listener and target group per port
// (TLS with the ssl-cert annotation's certificate on the ssl-ports, TCP
// otherwise), writes the NLB's DNS name into the Service status, and on
// deletion removes them before releasing the Service's finalizer — the
// behaviour coderctl's coder stage, verify and `down` depend on.
//
// It also gives each NLB a managed security group and the network
// interfaces ELB would, and leaves both behind when the NLB goes, as a
// cluster torn down before AWS released them does (leftovers.go).
//
// It is a test double, not a port of cloud-provider-aws: no targets are
// registered (kwok nodes are not EC2 instances), the nodes' security
// groups are not touched, and health checks are the NLB defaults.
package lbcontroller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// DefaultInterval is how often Services are listed when Options.Interval is 0.
const DefaultInterval = 500 * time.Millisecond

// resyncEvery re-checks Services that did not change, so that drift in AWS
// (a load balancer deleted behind the controller's back) is repaired.
const resyncEvery = 30 * time.Second

// Options configure Run and Start.
type Options struct {
	Kube kubernetes.Interface
	ELB  *elb.Client
	EC2  *ec2.Client
	// Cluster is the cluster name in the kubernetes.io/cluster/<name> tags.
	Cluster string
	// VPCID scopes the subnet search; empty means subnets tagged
	// kubernetes.io/cluster/<Cluster> in any VPC.
	VPCID string
	// Interval between Service listings. 0 means DefaultInterval.
	Interval time.Duration
	// Log receives one line per action and error. Nil discards them.
	Log io.Writer
}

func (o Options) validate() error {
	var missing []string
	if o.Kube == nil {
		missing = append(missing, "Kube")
	}
	if o.ELB == nil {
		missing = append(missing, "ELB")
	}
	if o.EC2 == nil {
		missing = append(missing, "EC2")
	}
	if o.Cluster == "" {
		missing = append(missing, "Cluster")
	}
	if len(missing) > 0 {
		return fmt.Errorf("lbcontroller: Options missing %v", missing)
	}
	return nil
}

// Run reconciles Services until ctx is done, then returns nil. Errors on one
// Service are logged, recorded as a Warning event on it, and retried on the
// next pass; only invalid options make Run return early.
func Run(ctx context.Context, opts Options) error {
	if err := opts.validate(); err != nil {
		return err
	}
	c := newController(opts)
	ticker := time.NewTicker(c.interval)
	defer ticker.Stop()
	for {
		c.pass(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// Start runs the controller in the background. stop cancels it and waits
// until it has finished its current pass.
func Start(ctx context.Context, opts Options) (stop func(), err error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = Run(ctx, opts)
	}()
	var once sync.Once
	return func() { once.Do(func() { cancel(); <-done }) }, nil
}

type controller struct {
	kube     kubernetes.Interface
	cloud    *cloud
	interval time.Duration
	log      io.Writer

	// synced holds the resourceVersion each Service had after its last
	// successful reconcile, so unchanged Services cost no AWS calls.
	synced   map[types.UID]string
	lastSync time.Time
	// lastError de-duplicates Warning events.
	lastError map[types.UID]string
}

func newController(opts Options) *controller {
	interval := opts.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	return &controller{
		kube:      opts.Kube,
		cloud:     &cloud{elb: opts.ELB, ec2: opts.EC2, cluster: opts.Cluster, vpcID: opts.VPCID},
		interval:  interval,
		log:       opts.Log,
		synced:    map[types.UID]string{},
		lastError: map[types.UID]string{},
	}
}

// pass reconciles every Service that wants a load balancer or still holds
// the finalizer.
func (c *controller) pass(ctx context.Context) {
	list, err := c.kube.CoreV1().Services(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		if ctx.Err() == nil {
			c.logf("list services: %v", err)
		}
		return
	}
	if time.Since(c.lastSync) > resyncEvery {
		clear(c.synced)
		c.lastSync = time.Now()
	}
	for i := range list.Items {
		if ctx.Err() != nil {
			return
		}
		c.reconcile(ctx, &list.Items[i])
	}
}

func (c *controller) reconcile(ctx context.Context, svc *corev1.Service) {
	var (
		out *corev1.Service
		err error
	)
	switch {
	case wantsLoadBalancer(svc):
		if c.synced[svc.UID] == svc.ResourceVersion {
			return
		}
		out, err = c.ensure(ctx, svc)
	case hasFinalizer(svc):
		out, err = c.cleanup(ctx, svc)
	default:
		return
	}
	if err != nil {
		delete(c.synced, svc.UID)
		c.warn(ctx, svc, err)
		return
	}
	delete(c.lastError, svc.UID)
	c.synced[svc.UID] = out.ResourceVersion
}

func hasFinalizer(svc *corev1.Service) bool {
	for _, f := range svc.Finalizers {
		if f == Finalizer {
			return true
		}
	}
	return false
}

// warn logs a reconcile failure and records it on the Service as the
// service controller does (reason SyncLoadBalancerFailed), once per
// distinct message.
func (c *controller) warn(ctx context.Context, svc *corev1.Service, err error) {
	if ctx.Err() != nil || apierrors.IsConflict(err) || errors.Is(err, context.Canceled) {
		return // a newer version of the Service is coming; retry quietly
	}
	msg := err.Error()
	c.logf("%s/%s: %s", svc.Namespace, svc.Name, msg)
	if c.lastError[svc.UID] == msg {
		return
	}
	c.lastError[svc.UID] = msg
	now := metav1.Now()
	event := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: svc.Name + ".", Namespace: svc.Namespace},
		InvolvedObject: corev1.ObjectReference{
			Kind: "Service", APIVersion: "v1", Namespace: svc.Namespace, Name: svc.Name,
			UID: svc.UID, ResourceVersion: svc.ResourceVersion,
		},
		Reason:         "SyncLoadBalancerFailed",
		Message:        "Error syncing load balancer: " + msg,
		Type:           corev1.EventTypeWarning,
		Source:         corev1.EventSource{Component: "lbcontroller (test double)"},
		FirstTimestamp: now,
		LastTimestamp:  now,
		Count:          1,
	}
	if _, err := c.kube.CoreV1().Events(svc.Namespace).Create(ctx, event, metav1.CreateOptions{}); err != nil && ctx.Err() == nil {
		c.logf("%s/%s: record event: %v", svc.Namespace, svc.Name, err)
	}
}

func (c *controller) logf(format string, args ...any) {
	if c.log != nil {
		fmt.Fprintf(c.log, "lbcontroller: "+format+"\n", args...)
	}
}
