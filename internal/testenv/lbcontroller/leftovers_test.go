package lbcontroller

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestSecurityGroupAndInterfacesOutliveTheNLB: each NLB gets a managed
// security group (the cluster's tags, the listeners' ports) and an
// interface per subnet in it; deleting the Service deletes the NLB and
// lets the Service go, but leaves the interfaces (not released yet) and so
// the group, for the teardown to clean.
func TestSecurityGroupAndInterfacesOutliveTheNLB(t *testing.T) {
	tests := []struct {
		name        string
		annotations map[string]string
		subnets     func(g *ground) []string
	}{
		{name: "internet-facing", subnets: func(g *ground) []string { return g.public }},
		{name: "internal", annotations: map[string]string{AnnotationInternal: "true"}, subnets: func(g *ground) []string { return g.private }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGround(t, true)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			g.start(t)
			annotations := map[string]string{AnnotationSSLCert: g.certARN, AnnotationSSLPorts: "443"}
			for k, v := range tt.annotations {
				annotations[k] = v
			}
			svc := g.create(ctx, t, g.coderService(annotations))
			g.waitHostname(ctx, t, svc.Name)
			// Other tests' Services on the shared control plane get NLBs
			// too: this Service's is the one with its owner tags.
			lbs := g.ownedLoadBalancers(ctx, t, g.ns+"/"+svc.Name)
			if len(lbs) != 1 {
				t.Fatalf("%d load balancers for %s/%s, want 1", len(lbs), g.ns, svc.Name)
			}
			lb := lbs[0]
			sgs := g.groupsNamed(ctx, t, SecurityGroupPrefix+LoadBalancerName(svc))
			if len(sgs) != 1 {
				t.Fatalf("%d groups named %s%s, want 1", len(sgs), SecurityGroupPrefix, LoadBalancerName(svc))
			}
			sg := sgs[0]
			sgID := aws.ToString(sg.GroupId)
			if !slices.Contains(lb.SecurityGroups, sgID) {
				t.Errorf("NLB's groups %v, want %s", lb.SecurityGroups, sgID)
			}
			want := map[string]string{ClusterTag(cluster): "owned", TagNLBSecurityGroupMode: "Managed", TagServiceName: g.ns + "/" + svc.Name}
			if !ec2HasTags(sg.Tags, want) || aws.ToString(sg.VpcId) != g.vpcID {
				t.Errorf("group %s: tags %v in %s, want %v in %s", sgID, sg.Tags, aws.ToString(sg.VpcId), want, g.vpcID)
			}
			var ports []int32
			for _, p := range sg.IpPermissions {
				ports = append(ports, aws.ToInt32(p.FromPort))
			}
			slices.Sort(ports)
			if !slices.Equal(ports, []int32{80, 443}) {
				t.Errorf("group allows ports %v, want the listeners' [80 443]", ports)
			}
			enis := g.interfacesIn(ctx, t, sgID)
			var subnets []string
			for _, e := range enis {
				subnets = append(subnets, aws.ToString(e.SubnetId))
				if aws.ToString(e.Description) != InterfaceDescription(lb) {
					t.Errorf("interface %s described %q, want %q", aws.ToString(e.NetworkInterfaceId), aws.ToString(e.Description), InterfaceDescription(lb))
				}
			}
			slices.Sort(subnets)
			wantSubnets := slices.Sorted(slices.Values(tt.subnets(g)))
			if !slices.Equal(subnets, wantSubnets) {
				t.Errorf("NLB interfaces in %v, want one in each of %v", subnets, wantSubnets)
			}

			if err := g.kube.CoreV1().Services(g.ns).Delete(ctx, svc.Name, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			g.waitService(ctx, t, svc.Name, "deletion", func(_ *corev1.Service, err error) bool { return apierrors.IsNotFound(err) })
			if lbs := g.ownedLoadBalancers(ctx, t, g.ns+"/"+svc.Name); len(lbs) != 0 {
				t.Errorf("after deletion moto still holds %d load balancers", len(lbs))
			}
			if left := g.interfacesIn(ctx, t, sgID); len(left) != len(enis) {
				t.Errorf("%d interfaces left after the NLB went, want its %d (not released yet)", len(left), len(enis))
			}
			if len(g.groupsNamed(ctx, t, SecurityGroupPrefix+LoadBalancerName(svc))) != 1 {
				t.Errorf("group %s was deleted though its interfaces still use it", sgID)
			}
		})
	}
}

func (g *ground) ownedLoadBalancers(ctx context.Context, t *testing.T, service string) []elbtypes.LoadBalancer {
	t.Helper()
	var out []elbtypes.LoadBalancer
	for _, lb := range g.loadBalancers(ctx, t) {
		if g.tags(ctx, t, aws.ToString(lb.LoadBalancerArn))[TagServiceName] == service {
			out = append(out, lb)
		}
	}
	return out
}

func (g *ground) groupsNamed(ctx context.Context, t *testing.T, name string) []ec2types.SecurityGroup {
	t.Helper()
	out, err := g.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{{Name: aws.String("group-name"), Values: []string{name}}}})
	if err != nil {
		t.Fatal(err)
	}
	return out.SecurityGroups
}

func (g *ground) interfacesIn(ctx context.Context, t *testing.T, sgID string) []ec2types.NetworkInterface {
	t.Helper()
	out, err := g.ec2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{Filters: []ec2types.Filter{{Name: aws.String("group-id"), Values: []string{sgID}}}})
	if err != nil {
		t.Fatal(err)
	}
	return out.NetworkInterfaces
}
