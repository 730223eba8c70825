package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/inventory"
	"github.com/coderctl/coderctl/internal/state"
	"github.com/coderctl/coderctl/internal/testenv/awsproxy"
)

var fullKills = flag.Bool("full-kills", false, "kill at every step boundary instead of a sample")

// expectedResources is exactly one of each resource a deployment has (the
// shipped config: one NAT, four node groups, two IAM roles per stage that
// needs them).
var expectedResources = map[string]int{
	"vpc": 1, "nat-gateway": 1, "internet-gateway": 1, "elastic-ip": 1, "eks-cluster": 1, "db-instance": 1,
	"db-subnet-group": 1, "certificate": 1, "load-balancer": 1, "oidc-provider": 1,
	"iam-role": 5, // cluster, EBS CSI, node, coder secrets, cluster-autoscaler
	"secret":   4, // coder/<cluster>/ db-master, database-url, github-client-id, github-client-secret
}

// TestSurvivesThrottlingAndServerErrors: with 20% of every AWS call
// throttled and 5% answered 5xx, up completes and creates each resource
// exactly once.
func TestSurvivesThrottlingAndServerErrors(t *testing.T) {
	w := newWorldWith(t, awsproxy.Instant().Faulty(0.20, 0.05, 0))
	if r := w.run("up", "--yes", "-o", "json"); r.code != 0 {
		t.Fatalf("up under faults: exit %d\n%s\n%s", r.code, r.stderr, tail(r.stdout, 20))
	}
	c := w.g.Proxy.Counts()
	t.Logf("faults injected: %v over %d calls", c.Faults, c.TotalReads()+c.TotalMutations())
	if c.Faults["throttle"] == 0 || c.Faults["5xx"] == 0 {
		t.Fatalf("no faults were injected: %v", c.Faults)
	}
	w.assertExactlyOneOfEach()
	if r := w.run("verify"); r.code != 0 {
		t.Errorf("verify after a faulty up: exit %d\n%s", r.code, tail(r.stdout, 20))
	}
}

// TestKillAndResume kills `coderctl up` with SIGKILL at step boundaries and
// in the middle of long waits, over and over, each time running up again
// from where it was; the deployment converges, verify passes, and exactly
// one of each resource exists. It also proves a second concurrent run is
// refused (exit 3, naming the holder) and that the state file is never torn.
func TestKillAndResume(t *testing.T) {
	p := awsproxy.Realistic(1.0 / 600) // EKS 1.3 s, RDS 2 s: long enough to kill mid-wait
	w := newWorldWith(t, p)
	kills, midWait := 0, 0
	stride := 3
	if *fullKills {
		stride = 1
	}
	for run := 1; run <= 60; run++ {
		// Kill after this many step completions in this run; every other run
		// is instead killed at the first long wait after that point.
		target := run * stride
		atWait := run%2 == 0
		killed, sawWait, err := w.upUntil(target, atWait, run == 2)
		if err != nil {
			t.Fatal(err)
		}
		w.assertStateParses()
		if !killed {
			t.Logf("run %d completed on its own after %d kills (%d mid-wait)", run, kills, midWait)
			break
		}
		kills++
		if sawWait {
			midWait++
		}
	}
	if kills < 5 {
		t.Errorf("only %d kill points were tried", kills)
	}
	t.Logf("kill points tried: %d (%d in the middle of a wait)", kills, midWait)
	if r := w.run("up", "--yes"); r.code != 0 {
		t.Fatalf("final up: exit %d\n%s", r.code, tail(r.stdout, 20))
	}
	if r := w.run("verify"); r.code != 0 {
		t.Fatalf("verify after kills: exit %d\n%s", r.code, tail(r.stdout, 30))
	}
	w.assertExactlyOneOfEach()
}

// upUntil runs `up -o json` and SIGKILLs it after `steps` step completions
// (or, with atWait, at the first "waiting" progress after them). With
// tryConcurrent it first starts a second up while this one holds the lock
// and checks it is refused. It reports whether the run was killed.
func (w *world) upUntil(steps int, atWait, tryConcurrent bool) (killed, sawWait bool, err error) {
	cmd := exec.Command(binary, "up", "--yes", "-o", "json")
	cmd.Dir = w.dir
	cmd.Env = w.environ()
	out, err := cmd.StdoutPipe()
	if err != nil {
		return false, false, err
	}
	cmd.Stderr = &w.output
	if err := cmd.Start(); err != nil {
		return false, false, err
	}
	done := 0
	var failures []string // what failed, for the error when up exits on its own
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<22)
	for sc.Scan() {
		line := sc.Bytes()
		w.output.Write(line)
		var ev struct{ Type, Status, Message, Stage, Step, Error string }
		if json.Unmarshal(line, &ev) != nil {
			continue
		}
		switch {
		case ev.Type == "step" && ev.Error != "":
			failures = append(failures, ev.Stage+"/"+ev.Step+": "+ev.Error)
		case ev.Type == "error": // bad input or a refused run: exit 2 or 3
			failures = append(failures, ev.Error)
		}
		if tryConcurrent && ev.Type == "step" {
			tryConcurrent = false
			w.assertSecondRunRefused(cmd.Process.Pid)
		}
		if ev.Type == "step" && ev.Status == "done" {
			done++
		}
		waiting := ev.Type == "progress" && strings.HasPrefix(ev.Message, "waiting")
		if done >= steps && (!atWait || waiting) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return true, waiting, nil
		}
	}
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok {
		return false, false, fmt.Errorf("up exited %d on its own before the kill point: %s", ee.ExitCode(), strings.Join(failures, "; "))
	}
	return false, false, err
}

// assertSecondRunRefused runs a second up while another holds the lock.
func (w *world) assertSecondRunRefused(holder int) {
	w.t.Helper()
	r := w.run("up", "--yes")
	if r.code != 3 {
		w.t.Fatalf("a second concurrent up exited %d, want 3: %s", r.code, r.stderr)
	}
	for _, want := range []string{"locked by another coderctl run", fmt.Sprintf("pid %d", holder), "coderctl up"} {
		if !strings.Contains(r.stderr, want) {
			w.t.Errorf("refusal %q does not mention %q", r.stderr, want)
		}
	}
}

// assertStateParses proves the state file is whole after a kill.
func (w *world) assertStateParses() {
	w.t.Helper()
	if _, err := state.Load(filepath.Join(w.dir, "coder-infra.env")); err != nil {
		w.t.Fatalf("state file torn after a kill: %v", err)
	}
	if matches, _ := filepath.Glob(filepath.Join(w.dir, ".coder-infra.env.tmp*")); len(matches) > 1 {
		w.t.Errorf("temp files pile up after kills: %v", matches)
	}
}

// assertExactlyOneOfEach counts what carries the deployment tag, the node
// groups and the helm releases.
func (w *world) assertExactlyOneOfEach() {
	w.t.Helper()
	ctx := context.Background()
	cfg, err := w.g.AWSConfig(ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	clients := awsx.NewClients(cfg)
	found, err := inventory.Tagged(ctx, clients, "coder-prod")
	if err != nil {
		w.t.Fatalf("inventory: %v", err)
	}
	counts := map[string]int{}
	for _, r := range found {
		kind, _, _ := strings.Cut(r, " ")
		counts[kind]++
	}
	for kind, want := range expectedResources {
		if counts[kind] != want {
			w.t.Errorf("%d %s, want exactly %d (found: %v)", counts[kind], kind, want, found)
		}
	}
	groups, err := clients.EKS.ListNodegroups(ctx, &eks.ListNodegroupsInput{ClusterName: aws.String("coder-prod")})
	if err != nil || len(groups.Nodegroups) != 4 {
		w.t.Errorf("node groups = %v (%v), want the four", groups, err)
	}
	releases := w.helmReleases()
	for _, want := range []string{"coder/coder", "coder/coder-provisioner", "kube-system/csi-secrets-store", "kube-system/secrets-provider-aws", "kube-system/cluster-autoscaler"} {
		if releases[want] != 1 {
			w.t.Errorf("release %s deployed %d times, want 1 (releases: %v)", want, releases[want], releases)
		}
	}
}

// helmReleases counts deployed releases by namespace/name from helm's
// storage (secrets labelled owner=helm, status=deployed).
func (w *world) helmReleases() map[string]int {
	w.t.Helper()
	kc, err := kubernetes.NewForConfig(w.g.Kube.RESTConfig())
	if err != nil {
		w.t.Fatal(err)
	}
	secs, err := kc.CoreV1().Secrets("").List(context.Background(), metav1.ListOptions{LabelSelector: "owner=helm,status=deployed"})
	if err != nil {
		w.t.Fatal(err)
	}
	out := map[string]int{}
	for _, s := range secs.Items {
		out[s.Namespace+"/"+s.Labels["name"]]++
	}
	return out
}
