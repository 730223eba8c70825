package e2e

import (
	"context"
	"encoding/json"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/testenv/ebscsi"
	"github.com/coderctl/coderctl/internal/testenv/lbcontroller"
)

// teardownNamespace holds the workspace the teardown test leaves running.
const teardownNamespace = "teardown-e2e"

// TestTeardownLeavesNothing deploys, starts a workspace with a home
// claim (the EBS stand-in makes its volume in moto), and tears down as a
// platform team would: the NLB's security group and interfaces, which the
// cloud controller stand-in leaves as AWS does when the cluster goes
// first, are cleaned by down; the claim's volume is deleted with
// --delete-volumes and otherwise kept and named in down's report.
func TestTeardownLeavesNothing(t *testing.T) {
	tests := []struct {
		name          string
		deleteVolumes bool
	}{
		{name: "down with --delete-volumes leaves nothing", deleteVolumes: true},
		{name: "down without --delete-volumes keeps and names the home volume"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			if r := w.run("up", "--yes", "-o", "json"); r.code != 0 {
				t.Fatalf("up: exit %d\nstderr: %s\nstdout tail: %s", r.code, r.stderr, tail(r.stdout, 15))
			}
			vpcID := w.stateValues()["VPC_ID"]
			if vpcID == "" {
				t.Fatal("VPC_ID not recorded after up")
			}
			c := w.ec2(t)
			volumeID := w.startWorkspace(t)
			// What the teardown must clean exists before it: the NLB's
			// interfaces (one per public subnet) and its group.
			if n := len(nlbInterfaces(t, c, vpcID)); n == 0 {
				t.Fatalf("no NLB interface in %s before down: the stand-in made none", vpcID)
			}
			if len(clusterGroups(t, c, "coder-prod")) == 0 {
				t.Fatal("no security group of the cluster's NLB before down")
			}

			// Without --delete-database, down is refused before anything
			// goes (the database has deletion protection): exit 2, the
			// flag named, the state as it was and every checkpoint passing.
			before := w.stateValues()
			if r := w.run("down", "--yes", "-o", "json"); r.code != 2 || !strings.Contains(r.stderr, "--delete-database") {
				t.Fatalf("down without --delete-database: exit %d, want 2 naming the flag\nstderr: %s", r.code, r.stderr)
			}
			if after := w.stateValues(); !maps.Equal(before, after) {
				t.Errorf("the refused down changed the state: %v -> %v", before, after)
			}
			if r := w.run("verify", "-o", "json"); r.code != 0 {
				t.Fatalf("verify after the refused down: exit %d\n%s", r.code, tail(r.stdout, 20))
			}

			args := []string{"down", "--yes", "--delete-database", "--skip-final-snapshot", "-o", "json"}
			if tt.deleteVolumes {
				args = append(args, "--delete-volumes")
			}
			start := time.Now()
			r := w.run(args...)
			if r.code != 0 {
				t.Fatalf("down: exit %d\n%s\n%s", r.code, r.stderr, tail(r.stdout, 60))
			}
			t.Logf("down took %s", time.Since(start).Round(time.Millisecond))

			// Without --force-delete-secrets the secrets are scheduled for
			// deletion with Secrets Manager's recovery window (the design's
			// choice): still listed, and nothing else may be.
			for _, left := range w.taggedLeftovers() {
				if !strings.HasPrefix(left, "secret ") || !strings.HasSuffix(left, "(scheduled for deletion)") {
					t.Errorf("still tagged for the deployment after down: %s", left)
				}
			}
			if enis := leftInterfaces(t, c, vpcID); len(enis) > 0 {
				t.Errorf("network interfaces left in %s after down: %v", vpcID, enis)
			}
			if sgs := clusterGroups(t, c, "coder-prod"); len(sgs) > 0 {
				t.Errorf("security groups of the deployment or its cluster left after down: %v", sgs)
			}
			kept := volumeExists(t, c, volumeID)
			named := keptVolumesReported(t, r.stdout)
			switch {
			case tt.deleteVolumes && kept:
				t.Errorf("the home volume %s is still in moto after down --delete-volumes", volumeID)
			case !tt.deleteVolumes && !kept:
				t.Errorf("the home volume %s was deleted without --delete-volumes", volumeID)
			case !tt.deleteVolumes && !named[volumeID]:
				t.Errorf("down's report does not name the kept volume %s (kept_volumes: %v)", volumeID, named)
			case tt.deleteVolumes && len(named) > 0:
				t.Errorf("down --delete-volumes reports kept volumes %v", named)
			}
			if !tt.deleteVolumes && !strings.Contains(r.stdout, teardownNamespace+"/home") {
				t.Errorf("down's report does not name the claim %s/home", teardownNamespace)
			}
		})
	}
}

// startWorkspace runs a workspace pod with a home claim on the default
// class and returns the EBS volume the stand-in made for it in moto.
func (w *world) startWorkspace(t *testing.T) string {
	t.Helper()
	kc, err := kubernetes.NewForConfig(w.g.Kube.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: teardownNamespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	createWorkspaceWithHome(t, kc, teardownNamespace)
	var pvName string
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		got, err := kc.CoreV1().PersistentVolumeClaims(teardownNamespace).Get(ctx, "home", metav1.GetOptions{})
		if err != nil || got.Status.Phase != corev1.ClaimBound {
			return false, nil
		}
		pvName = got.Spec.VolumeName
		return true, nil
	})
	if err != nil {
		t.Fatal("the home claim never bound")
	}
	pv, err := kc.CoreV1().PersistentVolumes().Get(ctx, pvName, metav1.GetOptions{})
	if err != nil || pv.Spec.CSI == nil {
		t.Fatalf("PV %s: %v", pvName, err)
	}
	id := pv.Spec.CSI.VolumeHandle
	c := w.ec2(t)
	if !volumeExists(t, c, id) {
		t.Fatalf("PV %s names %s, which moto does not have: the EBS stand-in made no volume", pvName, id)
	}
	return id
}

func (w *world) ec2(t *testing.T) *ec2.Client {
	t.Helper()
	cfg, err := w.g.AWSConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ec2.NewFromConfig(cfg)
}

func interfacesIn(t *testing.T, c *ec2.Client, vpcID string) []ec2types.NetworkInterface {
	t.Helper()
	out, err := c.DescribeNetworkInterfaces(context.Background(), &ec2.DescribeNetworkInterfacesInput{
		Filters: []ec2types.Filter{{Name: aws.String("vpc-id"), Values: []string{vpcID}}}})
	if err != nil {
		t.Fatal(err)
	}
	return out.NetworkInterfaces
}

// leftInterfaces names the interfaces left in the VPC, but for one kind
// that is moto's and not AWS's: moto gives an instance's primary interface
// DeleteOnTermination=false (AWS: true) and keeps it "in-use" after the
// node's instance is terminated; such an interface whose instance is
// terminated would be gone on AWS.
func leftInterfaces(t *testing.T, c *ec2.Client, vpcID string) []string {
	t.Helper()
	var out []string
	for _, e := range interfacesIn(t, c, vpcID) {
		desc := aws.ToString(e.NetworkInterfaceId) + " (" + aws.ToString(e.Description) + ", " + string(e.Status) + ")"
		if e.Attachment != nil && aws.ToInt32(e.Attachment.DeviceIndex) == 0 && aws.ToString(e.Attachment.InstanceId) != "" {
			if instanceTerminated(t, c, aws.ToString(e.Attachment.InstanceId)) {
				continue
			}
			desc += " of running instance " + aws.ToString(e.Attachment.InstanceId)
		}
		out = append(out, desc)
	}
	return out
}

func instanceTerminated(t *testing.T, c *ec2.Client, id string) bool {
	t.Helper()
	out, err := c.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		return true // gone altogether
	}
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			if i.State == nil || (i.State.Name != ec2types.InstanceStateNameTerminated && i.State.Name != ec2types.InstanceStateNameShuttingDown) {
				return false
			}
		}
	}
	return true
}

func nlbInterfaces(t *testing.T, c *ec2.Client, vpcID string) []string {
	t.Helper()
	var out []string
	for _, e := range interfacesIn(t, c, vpcID) {
		if strings.HasPrefix(aws.ToString(e.Description), "ELB net/") {
			out = append(out, aws.ToString(e.NetworkInterfaceId))
		}
	}
	return out
}

// clusterGroups lists the security groups tagged for the deployment or
// made for its cluster by a load balancer controller.
func clusterGroups(t *testing.T, c *ec2.Client, name string) []string {
	t.Helper()
	out, err := c.DescribeSecurityGroups(context.Background(), &ec2.DescribeSecurityGroupsInput{})
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, sg := range out.SecurityGroups {
		tags := awsx.EC2TagMap(sg.Tags)
		_, cluster := tags[lbcontroller.ClusterTag(name)]
		if tags[awsx.TagDeployment] == name || cluster || tags["elbv2.k8s.aws/cluster"] == name {
			found = append(found, aws.ToString(sg.GroupId)+" ("+aws.ToString(sg.GroupName)+")")
		}
	}
	return found
}

func volumeExists(t *testing.T, c *ec2.Client, id string) bool {
	t.Helper()
	out, err := c.DescribeVolumes(context.Background(), &ec2.DescribeVolumesInput{
		Filters: []ec2types.Filter{{Name: aws.String("volume-id"), Values: []string{id}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range out.Volumes {
		if awsx.EC2TagMap(v.Tags)[ebscsi.TagDriverCluster] != "true" {
			t.Errorf("volume %s lacks the driver's tag %s: %v", id, ebscsi.TagDriverCluster, v.Tags)
		}
	}
	return len(out.Volumes) == 1
}

// keptVolumesReported reads the kept_volumes of down's JSON notices.
func keptVolumesReported(t *testing.T, stdout string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, line := range strings.Split(stdout, "\n") {
		var ev struct { // a notice's data is flattened into the line
			Type string `json:"type"`
			Kept []struct {
				ID string `json:"volume_id"`
			} `json:"kept_volumes"`
		}
		if json.Unmarshal([]byte(line), &ev) != nil || ev.Type != "notice" {
			continue
		}
		for _, v := range ev.Kept {
			out[v.ID] = true
		}
	}
	return out
}
