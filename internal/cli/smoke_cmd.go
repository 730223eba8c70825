package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coderctl/coderctl/internal/coderapi"
	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/names"
)

// Smoke phases, each reported as a check of "stage" smoke.
const (
	smokeStage        = "smoke"
	phaseImport       = "template-import"
	phaseBuild        = "build"
	phaseAgent        = "agent-connected"
	phaseDelete       = "delete"
	defaultSmokeLimit = 10 * time.Minute
)

type smokeOptions struct {
	enabled bool // verify --smoke
	keep    bool
	timeout time.Duration
	// onCheck, when set, also receives each phase's check and duration
	// (verify --junit puts them in its report).
	onCheck func(engine.Check, time.Duration)
}

func (o *smokeOptions) addFlags(cmd *cobra.Command, fromVerify bool) {
	if fromVerify {
		cmd.Flags().BoolVar(&o.enabled, "smoke", false, "after the checkpoints, run 'coderctl smoke' (build, connect, delete a workspace)")
	}
	cmd.Flags().BoolVar(&o.keep, "keep", false, "leave the smoke workspace instead of deleting it")
	cmd.Flags().DurationVar(&o.timeout, "timeout", defaultSmokeLimit, "how long each smoke phase may take")
}

func newSmokeCmd(f *Factory, g *globalOptions) *cobra.Command {
	o := smokeOptions{enabled: true}
	cmd := &cobra.Command{
		Use:   "smoke",
		Short: "Build a throw-away workspace from " + coderapi.WorkspaceTemplateName + ", wait for its agent, delete it",
		Long: `Prove a developer can get a workspace: check that template ` + coderapi.WorkspaceTemplateName + ` exists
and its active version imported, create a workspace from it, wait for the build
and for the workspace agent to connect, then delete the workspace. Each phase is
a named check with its duration; a failed phase exits 1 with the build log's
last lines. It needs an owner session: CODER_SESSION_TOKEN, or the first-user
secret coderctl keeps when it created Coder's first owner.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runSmoke(cmd.Context(), f, g, o)
		},
	}
	o.addFlags(cmd, false)
	return cmd
}

// smokeRun is one smoke test's state.
type smokeRun struct {
	f      *Factory
	s      *session
	sink   engine.Sink
	client *coderapi.Client
	opts   smokeOptions
	checks []engine.Check
	failed []string
	poll   time.Duration
}

func runSmoke(ctx context.Context, f *Factory, g *globalOptions, o smokeOptions) error {
	if o.timeout <= 0 {
		return fault.Input("flag --timeout", o.timeout.String(), "give a positive duration such as 10m", "is not positive")
	}
	s, err := openSession(ctx, f, g, sessionNeeds{aws: true})
	if err != nil {
		return err
	}
	defer s.Close()
	owner := coderapi.OwnerForDeployment(s.deps.Inputs, f.LookupEnv, s.deps.AWS)
	sess, err := owner.Session(ctx, false)
	if coderapi.IsNoOwner(err) {
		return fault.Input(config.SourceEnvironment, coderapi.EnvSessionToken, coderapi.OwnerHint,
			"no Coder owner session for the smoke test: %v (nor %s set when `up` created Coder)", err, coderapi.KeyFirstUserEmail)
	}
	sink, flush := s.sink()
	defer flush()
	r := &smokeRun{f: f, s: s, sink: sink, opts: o, poll: time.Second}
	if s.deps.Opts.Wait.MinDelay > 0 {
		r.poll = s.deps.Opts.Wait.MinDelay
	}
	start := f.Now()
	if err != nil {
		r.report(engine.Failf(phaseImport, "check CODER_URL and that coderd answers", "no owner session: %v", err), 0)
	} else {
		r.client = sess.Client
		r.run(ctx)
	}
	sum := &engine.Summary{Mode: smokeStage, OK: len(r.failed) == 0, Duration: f.Now().Sub(start),
		Stages: []engine.StageResult{{Stage: smokeStage, Status: engine.StatusDone, Checks: r.checks}}}
	if !sum.OK {
		sum.Stages[0].Status = engine.StatusFailed
		sum.FailedChecks = r.failed
	}
	sink.Emit(engine.Event{Type: engine.EventSummary, Time: f.Now(), Status: statusWord(sum.OK), Duration: sum.Duration, Summary: sum})
	if !sum.OK {
		return &runError{msg: "smoke failed: " + strings.Join(r.failed, ", ")}
	}
	return nil
}

// report emits one phase's check with its duration.
func (r *smokeRun) report(c engine.Check, d time.Duration) {
	c.Stage = smokeStage
	if d > 0 {
		c.Reason += fmt.Sprintf(" (%s)", d.Round(time.Millisecond))
	}
	r.checks = append(r.checks, c)
	if r.opts.onCheck != nil {
		r.opts.onCheck(c, d)
	}
	if c.Status == engine.Fail {
		r.failed = append(r.failed, smokeStage+"/"+c.Name)
	}
	r.sink.Emit(engine.Event{Type: engine.EventCheck, Time: r.f.Now(), Stage: smokeStage, Check: &c, Duration: d,
		Data: map[string]any{"phase": c.Name}})
}

func (r *smokeRun) progress(phase, msg string) {
	r.sink.Emit(engine.Event{Type: engine.EventProgress, Time: r.f.Now(), Stage: smokeStage, Step: phase, Message: msg})
}

// phase runs f with the phase's deadline and reports its check.
func (r *smokeRun) phase(ctx context.Context, name string, f func(ctx context.Context) engine.Check) bool {
	pctx, cancel := context.WithTimeout(ctx, r.opts.timeout)
	defer cancel()
	start := r.f.Now()
	c := f(pctx)
	c.Name = name
	r.report(c, r.f.Now().Sub(start))
	return c.Status != engine.Fail
}

func (r *smokeRun) run(ctx context.Context) {
	var tpl *coderapi.Template
	if !r.phase(ctx, phaseImport, func(ctx context.Context) engine.Check {
		var c engine.Check
		tpl, c = r.checkTemplate(ctx)
		return c
	}) {
		return
	}
	var ws coderapi.Workspace
	built := r.phase(ctx, phaseBuild, func(ctx context.Context) engine.Check {
		var c engine.Check
		ws, c = r.build(ctx, tpl)
		return c
	})
	if ws.ID == "" {
		return // nothing was created
	}
	if built {
		r.phase(ctx, phaseAgent, func(ctx context.Context) engine.Check { return r.agent(ctx, ws) })
	}
	if r.opts.keep {
		r.report(engine.Passf(phaseDelete, "skipped (--keep): workspace %s left; delete it with `coder delete %s/%s`", ws.Name, ws.OwnerName, ws.Name), 0)
		return
	}
	// The workspace is deleted whatever happened before: smoke cleans up.
	r.phase(ctx, phaseDelete, func(ctx context.Context) engine.Check { return r.delete(ctx, ws) })
}

// checkTemplate: the template exists and its active version imported.
func (r *smokeRun) checkTemplate(ctx context.Context) (*coderapi.Template, engine.Check) {
	hint := "run 'coderctl stage template apply' (or 'coderctl up'): it pushes " + coderapi.WorkspaceTemplateName
	org, err := r.client.DefaultOrganization(ctx)
	if err != nil {
		return nil, engine.Failf("", "check the owner session and CODER_URL", "%v", err)
	}
	tpl, err := r.client.TemplateByName(ctx, org.ID, coderapi.WorkspaceTemplateName)
	switch {
	case err != nil:
		return nil, engine.Failf("", hint, "%v", err)
	case tpl == nil:
		return nil, engine.Failf("", hint, "Coder has no template %s", coderapi.WorkspaceTemplateName)
	}
	v, err := r.client.TemplateVersion(ctx, tpl.ActiveVersionID)
	if err != nil {
		return nil, engine.Failf("", hint, "read the active version of %s: %v", tpl.Name, err)
	}
	if v.Job.Status != coderapi.JobSucceeded {
		logs, _ := r.client.TemplateVersionLogs(ctx, v.ID)
		var lines []string
		for _, l := range logs {
			lines = append(lines, l.String())
		}
		if len(lines) > coderapi.LogTail {
			lines = lines[len(lines)-coderapi.LogTail:]
		}
		return nil, engine.Failf("", hint, "the active version %s of %s did not import (job %s: %s)%s", v.Name, tpl.Name, v.Job.Status, v.Job.Error, logTail(lines))
	}
	return tpl, engine.Passf("", "template %s, active version %s imported", tpl.Name, v.Name)
}

// build creates the workspace and waits for its start build.
func (r *smokeRun) build(ctx context.Context, tpl *coderapi.Template) (coderapi.Workspace, engine.Check) {
	name := "smoke-" + randomHex(3)
	ws, err := r.client.CreateWorkspace(ctx, "me", tpl.ID, name)
	if err != nil {
		return coderapi.Workspace{}, engine.Failf("", "check the template's import and the provisioner daemons ('coderctl verify provisioners')", "create workspace %s: %v", name, err)
	}
	r.progress(phaseBuild, fmt.Sprintf("workspace %s: build #%d queued", ws.Name, ws.LatestBuild.BuildNumber))
	b, err := r.client.WaitForBuild(ctx, ws.LatestBuild.ID, coderapi.Poll{Interval: r.poll, Progress: func(st string) { r.progress(phaseBuild, "build job "+st) }})
	if je, ok := coderapi.AsJobError(err); ok {
		return ws, engine.Failf("", "read the build log above; 'coderctl verify provisioners' checks the daemons", "%v%s", je, logTail(je.Logs))
	}
	if err != nil {
		return ws, engine.Failf("", "check coderd", "build of %s: %v", ws.Name, err)
	}
	return ws, engine.Passf("", "workspace %s built (build #%d, %s)", ws.Name, b.BuildNumber, b.Status)
}

// agent waits for the workspace's agents to connect; a failure says what
// the cluster says about the workspace's pod and claim.
func (r *smokeRun) agent(ctx context.Context, ws coderapi.Workspace) engine.Check {
	b, err := r.client.WaitForAgents(ctx, ws.ID, coderapi.Poll{Interval: r.poll, Progress: func(st string) { r.progress(phaseAgent, "agent "+st) }})
	if err == nil {
		var agents []string
		for _, a := range b.Agents() {
			agents = append(agents, a.Name)
		}
		return engine.Passf("", "agent %s of %s connected", strings.Join(agents, ", "), ws.Name)
	}
	// Read with a fresh deadline: the phase's may be spent.
	dctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	why := r.kubeDiagnosis(dctx, ws.ID)
	return engine.Failf("", "a Pending pod names what is missing (toleration, node group room, default StorageClass); 'coderctl verify' checks the cluster",
		"%v%s%s", err, why, logTail(r.client.BuildLogTail(dctx, ws.LatestBuild.ID)))
}

// kubeDiagnosis describes the workspace's pods and claims in Coder's
// namespace ("" when the cluster is not reachable).
func (r *smokeRun) kubeDiagnosis(ctx context.Context, workspaceID string) string {
	if r.s.deps.Kube == nil {
		return ""
	}
	kc, _, err := r.s.deps.KubeClient(ctx)
	if err != nil {
		return ""
	}
	sel := metav1.ListOptions{LabelSelector: "com.coder.workspace.id=" + workspaceID}
	var lines []string
	if pods, err := kc.CoreV1().Pods(names.CoderNamespace).List(ctx, sel); err == nil {
		for _, p := range pods.Items {
			line := fmt.Sprintf("pod %s %s", p.Name, p.Status.Phase)
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodScheduled && c.Status != corev1.ConditionTrue && c.Message != "" {
					line += ": " + c.Message
				}
			}
			lines = append(lines, line)
		}
		if len(pods.Items) == 0 {
			lines = append(lines, "no pod for the workspace in namespace "+names.CoderNamespace)
		}
	}
	if claims, err := kc.CoreV1().PersistentVolumeClaims(names.CoderNamespace).List(ctx, sel); err == nil {
		for _, c := range claims.Items {
			class := "no storage class"
			if c.Spec.StorageClassName != nil {
				class = "class " + *c.Spec.StorageClassName
			}
			lines = append(lines, fmt.Sprintf("claim %s %s (%s)", c.Name, c.Status.Phase, class))
		}
	}
	sort.Strings(lines)
	if len(lines) == 0 {
		return ""
	}
	return "; cluster: " + strings.Join(lines, "; ")
}

// delete deletes the workspace and waits for the delete build.
func (r *smokeRun) delete(ctx context.Context, ws coderapi.Workspace) engine.Check {
	hint := fmt.Sprintf("delete it by hand: `coder delete %s/%s`", ws.OwnerName, ws.Name)
	// A build still running cannot be followed by another: wait for it.
	if cur, err := r.client.Workspace(ctx, ws.ID); err == nil && !cur.LatestBuild.Job.Done() {
		_, _ = r.client.WaitForBuild(ctx, cur.LatestBuild.ID, coderapi.Poll{Interval: r.poll})
	}
	b, err := r.client.CreateBuild(ctx, ws.ID, coderapi.TransitionDelete)
	if err != nil {
		return engine.Failf("", hint, "delete workspace %s: %v", ws.Name, err)
	}
	b, err = r.client.WaitForBuild(ctx, b.ID, coderapi.Poll{Interval: r.poll, Progress: func(st string) { r.progress(phaseDelete, "delete job "+st) }})
	if je, ok := coderapi.AsJobError(err); ok {
		return engine.Failf("", hint, "%v%s", je, logTail(je.Logs))
	}
	if err != nil {
		return engine.Failf("", hint, "delete workspace %s: %v", ws.Name, err)
	}
	return engine.Passf("", "workspace %s deleted (build #%d)", ws.Name, b.BuildNumber)
}

func logTail(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	return "; last log lines:\n    " + strings.Join(lines, "\n    ")
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
