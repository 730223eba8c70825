package autoscaler

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/sizing"
)

const applyHint = "run 'coderctl stage autoscaler apply'"

// kubeCallTimeout bounds one Kubernetes call.
const kubeCallTimeout = 20 * time.Second

func (s *stage) verify(ctx context.Context) []engine.Check {
	if !s.enabled() {
		return []engine.Check{engine.Passf(CheckDisabled,
			"AUTOSCALER=none: nothing grows the node groups; capacity is counted at each group's desiredCapacity")}
	}
	return []engine.Check{s.checkRunning(ctx), s.checkRole(ctx), s.checkDiscoveryTags(ctx)}
}

// discoveryArg is the flag the chart renders from autoDiscovery: the
// autoscaler manages the Auto Scaling groups carrying both tags.
func discoveryArg(cluster string) string {
	return "--node-group-auto-discovery=asg:tag=" + TagEnabled + "," + TagCluster(cluster)
}

// checkRunning passes when the Deployment is ready, its pods run on system
// nodes, and it discovers this cluster's groups.
func (s *stage) checkRunning(ctx context.Context) engine.Check {
	kc, _, err := s.d.KubeClient(ctx)
	if err != nil {
		return engine.Failf(CheckRunning, "run 'coderctl stage eks apply'", "cannot reach the cluster: %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, kubeCallTimeout)
	defer cancel()
	dep, err := kc.AppsV1().Deployments(Namespace).Get(ctx, Deployment, metav1.GetOptions{})
	if err != nil {
		return engine.Failf(CheckRunning, applyHint, "Deployment %s/%s: %v", Namespace, Deployment, err)
	}
	want := int32(1)
	if dep.Spec.Replicas != nil {
		want = *dep.Spec.Replicas
	}
	if dep.Status.ReadyReplicas < want {
		return engine.Failf(CheckRunning, "kubectl -n kube-system describe deployment cluster-autoscaler",
			"Deployment %s/%s has %d of %d replicas ready", Namespace, Deployment, dep.Status.ReadyReplicas, want)
	}
	if args := strings.Join(containerArgs(dep.Spec.Template.Spec.Containers), " "); !strings.Contains(args, discoveryArg(s.d.Deployment())) {
		return engine.Failf(CheckRunning, applyHint, "Deployment %s/%s does not discover this cluster's groups (no %s)",
			Namespace, Deployment, discoveryArg(s.d.Deployment()))
	}
	if off, err := s.podsOffSystemNodes(ctx, kc, metav1.FormatLabelSelector(dep.Spec.Selector)); err != nil {
		return engine.Failf(CheckRunning, "check access to the cluster", "%v", err)
	} else if off != "" {
		return engine.Failf(CheckRunning, applyHint, "autoscaler pod %s does not run on a %s=%s node", off, sizing.NodeTypeLabel, sizing.RoleSystem)
	}
	return engine.Passf(CheckRunning, "%s ready on the system nodes, discovering groups tagged %s and %s",
		Deployment, TagEnabled, TagCluster(s.d.Deployment()))
}

func containerArgs(cs []corev1.Container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Command...)
		out = append(out, c.Args...)
	}
	return out
}

// podsOffSystemNodes names the first running autoscaler pod that is not on
// a system node ("" when all are), when the cluster config has a system
// group.
func (s *stage) podsOffSystemNodes(ctx context.Context, kc kubernetes.Interface, selector string) (string, error) {
	if _, ok := sizing.GroupFor(s.d.NodeGroups(), sizing.RoleSystem); !ok {
		return "", nil
	}
	pods, err := kc.CoreV1().Pods(Namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return "", fmt.Errorf("list autoscaler pods: %w", err)
	}
	for _, p := range pods.Items {
		if p.Spec.NodeName == "" {
			continue
		}
		node, err := kc.CoreV1().Nodes().Get(ctx, p.Spec.NodeName, metav1.GetOptions{})
		if err != nil {
			return "", fmt.Errorf("read node %s: %w", p.Spec.NodeName, err)
		}
		if node.Labels[sizing.NodeTypeLabel] != sizing.RoleSystem {
			return p.Name + " (on " + p.Spec.NodeName + ")", nil
		}
	}
	return "", nil
}

// checkRole passes when the role's trust and its one inline policy are
// exactly coderctl's, with nothing attached beside them.
func (s *stage) checkRole(ctx context.Context) engine.Check {
	st, err := s.d.ReadIRSARole(ctx, Role)
	switch {
	case err != nil:
		return engine.Failf(CheckRole, "check IAM access", "%v", err)
	case st == nil:
		return engine.Failf(CheckRole, applyHint, "IAM role %s does not exist", s.roleName())
	case len(st.Drift()) > 0:
		return engine.Failf(CheckRole, applyHint, "IAM role %s: %s", s.roleName(), strings.Join(st.Drift(), "; "))
	}
	return engine.Passf(CheckRole, "IAM role %s: trusted only by %s/%s; may resize only Auto Scaling groups tagged %s=owned",
		s.roleName(), Namespace, ServiceAccount, TagCluster(s.d.Deployment()))
}

// checkDiscoveryTags passes when the Auto Scaling group of every group
// that may grow carries both discovery tags: without them the autoscaler
// never sees the group, and its pending pods stay pending.
func (s *stage) checkDiscoveryTags(ctx context.Context) engine.Check {
	var problems []string
	growable := 0
	for _, g := range s.d.NodeGroups() {
		if !g.Growable() {
			continue
		}
		growable++
		if p := s.groupTagProblem(ctx, g); p != "" {
			problems = append(problems, p)
		}
	}
	if len(problems) > 0 {
		return engine.Failf(CheckDiscoveryTag, "tag the groups' Auto Scaling groups as EKS does, or recreate the node groups ('coderctl stage nodegroups apply')",
			"%s", strings.Join(problems, "; "))
	}
	if growable == 0 {
		return engine.Passf(CheckDiscoveryTag, "no node group may grow (minSize == maxSize everywhere): the autoscaler has nothing to do")
	}
	return engine.Passf(CheckDiscoveryTag, "the Auto Scaling groups of all %d growable node groups carry %s and %s",
		growable, TagEnabled, TagCluster(s.d.Deployment()))
}

// groupTagProblem says what is wrong with one group's Auto Scaling
// groups' tags ("" when nothing is).
func (s *stage) groupTagProblem(ctx context.Context, g config.NodeGroupSpec) string {
	out, err := s.d.AWS.EKS.DescribeNodegroup(ctx, &eks.DescribeNodegroupInput{
		ClusterName: aws.String(s.d.Deployment()), NodegroupName: aws.String(g.Name)})
	if err != nil {
		return fmt.Sprintf("node group %s: %v", g.Name, awsx.Describe("EKS DescribeNodegroup", err))
	}
	var names []string
	if res := out.Nodegroup.Resources; res != nil {
		for _, a := range res.AutoScalingGroups {
			names = append(names, aws.ToString(a.Name))
		}
	}
	if len(names) == 0 {
		return fmt.Sprintf("node group %s has no Auto Scaling group yet", g.Name)
	}
	groups, err := s.d.AWS.AutoScaling.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: names})
	if err != nil {
		return fmt.Sprintf("node group %s: %v", g.Name, awsx.Describe("Auto Scaling DescribeAutoScalingGroups", err))
	}
	if len(groups.AutoScalingGroups) == 0 {
		return fmt.Sprintf("node group %s: Auto Scaling group %s not found", g.Name, strings.Join(names, ", "))
	}
	for _, asg := range groups.AutoScalingGroups {
		tags := map[string]string{}
		for _, t := range asg.Tags {
			tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
		for _, key := range []string{TagEnabled, TagCluster(s.d.Deployment())} {
			if _, ok := tags[key]; !ok {
				return fmt.Sprintf("node group %s: Auto Scaling group %s lacks tag %s", g.Name, aws.ToString(asg.AutoScalingGroupName), key)
			}
		}
	}
	return ""
}
