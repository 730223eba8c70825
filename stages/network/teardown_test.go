package network

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
	"github.com/coderctl/coderctl/internal/testenv/stagetest"
)

// depsProxy stands in front of moto and refuses EC2's deletes as AWS does
// while something still uses the resource, which moto does not: it deletes
// a subnet, group or VPC whatever is in it. Refused with DependencyViolation
// and AWS's message: DeleteSubnet while a network interface is in the
// subnet; DeleteSecurityGroup while an interface uses the group;
// DetachInternetGateway while an interface in the VPC maps a public
// address; DeleteVpc while subnets, groups other than default, attached
// gateways or interfaces remain. Interfaces in inUse play ones attached to
// something (an NLB's, before AWS releases them): DeleteNetworkInterface
// on them is refused with InvalidNetworkInterface.InUse. onRefuse hears
// each refusal with its count for that resource, so a test can release a
// holder after a few, as AWS does.
type depsProxy struct {
	t     *testing.T
	moto  *ec2.Client
	proxy *httputil.ReverseProxy
	URL   string

	mu       sync.Mutex
	inUse    map[string]bool
	refusals map[string]int // "DeleteSubnet subnet-…" -> times refused
	onRefuse func(action, id string, n int)
}

func startDepsProxy(t *testing.T, env *stagetest.ConfigEnv) *depsProxy {
	t.Helper()
	target, err := url.Parse(env.Moto.URL)
	must(t, err)
	p := &depsProxy{t: t, moto: env.Deps.AWS.EC2, proxy: httputil.NewSingleHostReverseProxy(target), inUse: map[string]bool{}, refusals: map[string]int{}}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// aim points the env's EC2 client through the proxy, with a short bound on
// retries (each test's failures are meant to be final).
func (p *depsProxy) aim(env *stagetest.ConfigEnv, bound time.Duration) {
	env.Deps.AWS.EC2 = ec2.New(env.Deps.AWS.EC2.Options(), func(o *ec2.Options) { o.BaseEndpoint = aws.String(p.URL) })
	env.Deps.Opts.Wait.Timeout = bound
}

func (p *depsProxy) refusalsOf(action, id string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refusals[action+" "+id]
}

func (p *depsProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	form, _ := url.ParseQuery(string(body))
	action := form.Get("Action")
	var id, msg string
	var held bool
	ctx := r.Context()
	switch action {
	case "DeleteSubnet":
		id = form.Get("SubnetId")
		held = len(p.enis(ctx, filter("subnet-id", id))) > 0
		msg = fmt.Sprintf("The subnet '%s' has dependencies and cannot be deleted.", id)
	case "DeleteSecurityGroup":
		id = form.Get("GroupId")
		held = len(p.enis(ctx, filter("group-id", id))) > 0
		msg = fmt.Sprintf("resource %s has a dependent object", id)
	case "DetachInternetGateway":
		id = form.Get("InternetGatewayId")
		for _, e := range p.enis(ctx, filter("vpc-id", form.Get("VpcId"))) {
			held = held || (e.Association != nil && aws.ToString(e.Association.PublicIp) != "")
		}
		msg = fmt.Sprintf("Network %s has some mapped public address(es). Please unmap those public address(es) before detaching the gateway.", form.Get("VpcId"))
	case "DeleteVpc":
		id = form.Get("VpcId")
		held = p.vpcInUse(ctx, id)
		msg = fmt.Sprintf("The vpc '%s' has dependencies and cannot be deleted.", id)
	case "DeleteNetworkInterface":
		id = form.Get("NetworkInterfaceId")
		p.mu.Lock()
		inUse := p.inUse[id]
		p.mu.Unlock()
		if inUse {
			writeEC2Error(w, "InvalidNetworkInterface.InUse", fmt.Sprintf("Interface: [%s] in use.", id))
			return
		}
	}
	if held {
		p.mu.Lock()
		p.refusals[action+" "+id]++
		n, hook := p.refusals[action+" "+id], p.onRefuse
		p.mu.Unlock()
		writeEC2Error(w, "DependencyViolation", msg)
		if hook != nil {
			hook(action, id, n)
		}
		return
	}
	p.proxy.ServeHTTP(w, r)
}

func writeEC2Error(w http.ResponseWriter, code, msg string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(http.StatusBadRequest)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>deps-proxy</RequestID></Response>`, code, msg)
}

func (p *depsProxy) enis(ctx context.Context, f ...ec2types.Filter) []ec2types.NetworkInterface {
	out, err := p.moto.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{Filters: f})
	if err != nil {
		p.t.Errorf("deps proxy: %v", err)
		return nil
	}
	return out.NetworkInterfaces
}

func (p *depsProxy) vpcInUse(ctx context.Context, vpcID string) bool {
	in := []ec2types.Filter{filter("vpc-id", vpcID)}
	subnets, err1 := p.moto.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: in})
	sgs, err2 := p.moto.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: in})
	igws, err3 := p.moto.DescribeInternetGateways(ctx, &ec2.DescribeInternetGatewaysInput{Filters: []ec2types.Filter{filter("attachment.vpc-id", vpcID)}})
	for _, err := range []error{err1, err2, err3} {
		if err != nil {
			p.t.Errorf("deps proxy: %v", err)
			return false
		}
	}
	groups := 0
	for _, sg := range sgs.SecurityGroups {
		if aws.ToString(sg.GroupName) != "default" {
			groups++
		}
	}
	return len(subnets.Subnets)+groups+len(igws.InternetGateways)+len(p.enis(ctx, in...)) > 0
}

// leftovers is what a test puts in the deployment's VPC before destroy.
type leftovers struct {
	keep    []string // IDs that must survive destroy (not the cluster's)
	gone    []string // IDs destroy must remove
	inUse   []string // interfaces the proxy says are attached
	release func(p *depsProxy, action, id string, n int)
}

func TestTeardownCleansAndRetries(t *testing.T) {
	const cluster = deployment
	tests := []struct {
		name  string
		setup func(t *testing.T, c *ec2.Client, vpc string, private, public []string) leftovers
		// wantErr: destroy fails naming each of these; empty: it succeeds.
		wantErr []string
		// retried: destroy must have been refused at least this often on
		// the named action before it succeeded.
		retried string
	}{{
		name: "detached interface the VPC CNI left in a private subnet",
		setup: func(t *testing.T, c *ec2.Client, vpc string, private, _ []string) leftovers {
			eni := createENI(t, c, private[0], "aws-K8S-i-0a1b2c3d4e5f60718", nil, map[string]string{"cluster.k8s.amazonaws.com/name": cluster})
			return leftovers{gone: []string{eni}}
		},
	}, {
		name: "cloud controller's NLB group and the NLB's interfaces in the public subnets",
		setup: func(t *testing.T, c *ec2.Client, vpc string, _, public []string) leftovers {
			sg := createSG(t, c, vpc, "k8s-elb-a1b2c3d4e5f6", map[string]string{"kubernetes.io/cluster/" + cluster: "owned"})
			out := leftovers{gone: []string{sg}}
			for _, s := range public {
				out.gone = append(out.gone, createENI(t, c, s, "ELB net/a1b2c3d4e5f6/0123456789abcdef", []string{sg}, nil))
			}
			return out
		},
	}, {
		name: "AWS Load Balancer Controller's frontend and backend groups",
		setup: func(t *testing.T, c *ec2.Client, vpc string, private, public []string) leftovers {
			front := createSG(t, c, vpc, "k8s-coder-coder-9f8e7d6c5b", map[string]string{tagELBv2Cluster: cluster, "service.k8s.aws/stack": "coder/coder"})
			back := createSG(t, c, vpc, "k8s-traffic-"+cluster+"-1a2b3c4d5e", map[string]string{tagELBv2Cluster: cluster, "elbv2.k8s.aws/resource": "backend-sg"})
			eni := createENI(t, c, public[1], "ELB net/k8s-coder-coder-9f8e7d6c5b/0123", []string{front, back}, nil)
			return leftovers{gone: []string{front, back, eni}}
		},
	}, {
		name: "load balancer interface AWS releases after the subnet was refused twice",
		setup: func(t *testing.T, c *ec2.Client, vpc string, _, public []string) leftovers {
			eni := createENI(t, c, public[0], "ELB net/k8s-coder-coder-1a2b/3c4d", nil, nil)
			return leftovers{gone: []string{eni}, inUse: []string{eni}, release: func(p *depsProxy, action, id string, n int) {
				if action == "DeleteSubnet" && id == public[0] && n == 2 {
					p.mu.Lock()
					delete(p.inUse, eni)
					p.mu.Unlock()
					_, err := c.DeleteNetworkInterface(context.Background(), &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: aws.String(eni)})
					must(t, err)
				}
			}}
		},
		retried: "DeleteSubnet",
	}, {
		name: "public address a load balancer still maps holds the internet gateway until released",
		setup: func(t *testing.T, c *ec2.Client, vpc string, _, public []string) leftovers {
			ctx := context.Background()
			eni := createENI(t, c, public[2], "ELB net/k8s-coder-coder-5e6f/7a8b", nil, nil)
			eip, err := c.AllocateAddress(ctx, &ec2.AllocateAddressInput{Domain: ec2types.DomainTypeVpc})
			must(t, err)
			assoc, err := c.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: eip.AllocationId, NetworkInterfaceId: aws.String(eni)})
			must(t, err)
			return leftovers{gone: []string{eni}, inUse: []string{eni}, release: func(p *depsProxy, action, id string, n int) {
				if action == "DetachInternetGateway" && n == 2 {
					p.mu.Lock()
					delete(p.inUse, eni)
					p.mu.Unlock()
					ctx := context.Background()
					_, err := c.DisassociateAddress(ctx, &ec2.DisassociateAddressInput{AssociationId: assoc.AssociationId})
					must(t, err)
					_, err = c.ReleaseAddress(ctx, &ec2.ReleaseAddressInput{AllocationId: eip.AllocationId})
					must(t, err)
					_, err = c.DeleteNetworkInterface(ctx, &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: aws.String(eni)})
					must(t, err)
				}
			}}
		},
		retried: "DetachInternetGateway",
	}, {
		name: "the database's group and interface, in use until AWS releases it after three refusals of its subnet",
		setup: func(t *testing.T, c *ec2.Client, vpc string, private, _ []string) leftovers {
			sg := createSG(t, c, vpc, "coder-prod-rds", map[string]string{"coderctl/deployment": deployment, "coderctl/stage": "rds"})
			eni := createENI(t, c, private[1], "RDSNetworkInterface", []string{sg}, nil)
			return leftovers{gone: []string{sg, eni}, inUse: []string{eni}, release: func(p *depsProxy, action, id string, n int) {
				if action == "DeleteSubnet" && id == private[1] && n == 3 {
					p.mu.Lock()
					delete(p.inUse, eni)
					p.mu.Unlock()
					_, err := c.DeleteNetworkInterface(context.Background(), &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: aws.String(eni)})
					must(t, err)
				}
			}}
		},
		retried: "DeleteSubnet",
	}, {
		name: "interface still attached is named, not deleted",
		setup: func(t *testing.T, c *ec2.Client, vpc string, private, _ []string) leftovers {
			eni := createENI(t, c, private[2], "Interface for NAT-ish appliance", nil, nil)
			return leftovers{keep: []string{eni}, inUse: []string{eni}}
		},
		wantErr: []string{"subnet", "held by", "in use"},
	}, {
		name: "groups that are not the cluster's are left and named",
		setup: func(t *testing.T, c *ec2.Client, vpc string, _, _ []string) leftovers {
			other := createSG(t, c, vpc, "k8s-elb-0f0f0f0f", map[string]string{"kubernetes.io/cluster/other-cluster": "owned"})
			shared := createSG(t, c, vpc, "team-shared", map[string]string{"kubernetes.io/cluster/" + cluster: "shared"})
			otherLBC := createSG(t, c, vpc, "k8s-traffic-other-1234", map[string]string{tagELBv2Cluster: "other-cluster"})
			return leftovers{keep: []string{other, shared, otherLBC}}
		},
		wantErr: []string{"VPC", "held by", "k8s-elb-0f0f0f0f", "team-shared", "k8s-traffic-other-1234"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := stagetest.WriteClusterConfig(t, t.TempDir())
			env := stagetest.NewWithClusterConfig(t, nil, cfg)
			run(t, env, engine.ModeApply)
			c := env.Deps.AWS.EC2
			vpc := env.Deps.State.Get(names.KeyVPCID)
			private := strings.Split(env.Deps.State.Get(names.KeyPrivateSubnetIDs), ",")
			public := strings.Split(env.Deps.State.Get(names.KeyPublicSubnetIDs), ",")
			left := tt.setup(t, c, vpc, private, public)

			env.Reload(t)
			p := startDepsProxy(t, env)
			for _, id := range left.inUse {
				p.inUse[id] = true
			}
			if left.release != nil {
				p.onRefuse = func(action, id string, n int) { left.release(p, action, id, n) }
			}
			bound := 30 * time.Second
			if len(tt.wantErr) > 0 {
				bound = 300 * time.Millisecond
			}
			p.aim(env, bound)
			sum, events, err := env.Run(t, graph(env.Deps), engine.Options{Mode: engine.ModeDestroy, Only: []string{Name}})
			failed := err != nil || !sum.OK
			msgs := stepErrors(events)
			switch {
			case len(tt.wantErr) == 0 && failed:
				t.Fatalf("destroy failed: %v\n%s", err, msgs)
			case len(tt.wantErr) > 0 && !failed:
				t.Fatalf("destroy succeeded, want it to fail naming %v", tt.wantErr)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(msgs, want) {
					t.Errorf("destroy's error does not name %q:\n%s", want, msgs)
				}
			}
			if len(tt.wantErr) > 0 {
				for _, id := range left.keep {
					if !strings.Contains(msgs, id) {
						t.Errorf("destroy's error does not name the holder %s:\n%s", id, msgs)
					}
				}
			}
			if tt.retried != "" {
				refused := 0
				p.mu.Lock()
				for k, n := range p.refusals {
					if strings.HasPrefix(k, tt.retried+" ") {
						refused += n
					}
				}
				p.mu.Unlock()
				if refused < 2 {
					t.Errorf("%s refused %d times, want it retried after at least 2 refusals", tt.retried, refused)
				}
			}
			exists := existing(t, c)
			for _, id := range left.gone {
				if exists[id] {
					t.Errorf("%s still exists after destroy", id)
				}
			}
			for _, id := range left.keep {
				if !exists[id] {
					t.Errorf("%s was deleted: it is not the deployment's or the cluster's", id)
				}
			}
			if len(tt.wantErr) == 0 {
				if inv := taggedInventory(t, c); slices.ContainsFunc([]int{len(inv.VPCs), len(inv.Subnets), len(inv.SecurityGroups), len(inv.IGWs)}, func(n int) bool { return n > 0 }) {
					t.Errorf("still tagged after destroy: %+v", inv)
				}
				if enis := p.enis(context.Background(), filter("vpc-id", vpc)); len(enis) > 0 {
					t.Errorf("%d network interfaces left in %s", len(enis), vpc)
				}
			}
		})
	}
}

// existing lists every interface and security group ID moto still has.
func existing(t *testing.T, c *ec2.Client) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	enis, err := c.DescribeNetworkInterfaces(context.Background(), &ec2.DescribeNetworkInterfacesInput{})
	must(t, err)
	for _, e := range enis.NetworkInterfaces {
		out[aws.ToString(e.NetworkInterfaceId)] = true
	}
	sgs, err := c.DescribeSecurityGroups(context.Background(), &ec2.DescribeSecurityGroupsInput{})
	must(t, err)
	for _, sg := range sgs.SecurityGroups {
		out[aws.ToString(sg.GroupId)] = true
	}
	return out
}

func createENI(t *testing.T, c *ec2.Client, subnet, description string, groups []string, tags map[string]string) string {
	t.Helper()
	in := &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(subnet), Description: aws.String(description), Groups: groups}
	if len(tags) > 0 {
		in.TagSpecifications = tagSpec(ec2types.ResourceTypeNetworkInterface, tags)
	}
	out, err := c.CreateNetworkInterface(context.Background(), in)
	must(t, err)
	return aws.ToString(out.NetworkInterface.NetworkInterfaceId)
}

func createSG(t *testing.T, c *ec2.Client, vpc, name string, tags map[string]string) string {
	t.Helper()
	out, err := c.CreateSecurityGroup(context.Background(), &ec2.CreateSecurityGroupInput{
		GroupName: aws.String(name), Description: aws.String(name), VpcId: aws.String(vpc),
		TagSpecifications: tagSpec(ec2types.ResourceTypeSecurityGroup, tags),
	})
	must(t, err)
	return aws.ToString(out.GroupId)
}
