package awsproxy

import "time"

// Kind is a resource type whose creation and deletion take time on AWS.
type Kind string

// The resource kinds the proxy slows down.
const (
	EKSCluster   Kind = "eks-cluster"
	EKSNodegroup Kind = "eks-nodegroup"
	EKSAddon     Kind = "eks-addon"
	RDSInstance  Kind = "rds-instance"
	NATGateway   Kind = "nat-gateway"
	Certificate  Kind = "acm-certificate"
	LoadBalancer Kind = "load-balancer"
	// Updates EKS answers InProgress and reports through DescribeUpdate:
	// their Create duration is how long the update stays InProgress.
	EKSVersionUpdate   Kind = "eks-version-update"
	EKSNodegroupUpdate Kind = "eks-nodegroup-update"
	EKSAddonUpdate     Kind = "eks-addon-update"
)

// Profile is how slow and how faulty the proxy makes AWS.
type Profile struct {
	Name string
	// Create and Delete are how long a resource stays in its in-progress
	// status after the create or delete call.
	Create map[Kind]time.Duration
	Delete map[Kind]time.Duration
	// Rates, 0..1, per request: answered with a throttling error, with an
	// HTTP 500/503, with a dropped connection before forwarding, or forwarded
	// and then dropped (the call happened but the client never hears so).
	Throttle, ServerError, Drop, DropAfter float64
	// FaultMutationsOnly limits the faults to mutating calls.
	FaultMutationsOnly bool
	Seed               int64
}

// Instant passes everything through: moto's own behaviour, with counting.
func Instant() Profile { return Profile{Name: "instant", Seed: 1} }

// Realistic uses the durations measured on real AWS (TESTBED.md), scaled:
// 1.0 is real time, 1.0/200 makes a 13-minute EKS cluster take ~4 s.
func Realistic(scale float64) Profile {
	s := func(d time.Duration) time.Duration { return time.Duration(float64(d) * scale) }
	return Profile{
		Name: "realistic",
		Create: map[Kind]time.Duration{
			EKSCluster: s(13 * time.Minute), EKSNodegroup: s(3 * time.Minute), EKSAddon: s(2 * time.Minute),
			RDSInstance: s(20 * time.Minute), NATGateway: s(90 * time.Second),
			Certificate: s(5 * time.Minute), LoadBalancer: s(150 * time.Second),
			// Updates, as coderctl's plan models them: a control plane
			// version update about 10 minutes (EKS: "should finish within
			// a few minutes"; minor upgrades are reported at 8-12), a
			// managed node group's version update about 10 minutes for a
			// small group (new nodes launch and join, old ones drain), an
			// add-on update a minute or two.
			EKSVersionUpdate: s(10 * time.Minute), EKSNodegroupUpdate: s(10 * time.Minute), EKSAddonUpdate: s(90 * time.Second),
		},
		Delete: map[Kind]time.Duration{
			EKSCluster: s(8 * time.Minute), EKSNodegroup: s(5 * time.Minute), EKSAddon: s(time.Minute),
			RDSInstance: s(10 * time.Minute), NATGateway: s(time.Minute), LoadBalancer: s(time.Minute),
		},
		Seed: 1,
	}
}

// Faulty adds fault rates to a profile.
func (p Profile) Faulty(throttle, serverError, drop float64) Profile {
	p.Throttle, p.ServerError, p.Drop = throttle, serverError, drop
	return p
}
