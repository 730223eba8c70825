package helmx

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	"k8s.io/client-go/kubernetes"

	"github.com/coderctl/coderctl/internal/fault"
)

// Plan reports what Apply would do, reading the cluster and the chart
// source but changing neither.
func (c *Client) Plan(ctx context.Context, rel Release) (Change, error) {
	want, err := c.prepare(rel)
	if err != nil {
		return Change{}, err
	}
	cfg, err := c.actionConfig(rel.Namespace, nil)
	if err != nil {
		return Change{}, err
	}
	last, err := lastRevision(ctx, cfg, rel.Name)
	if err != nil {
		return Change{}, err
	}
	return decide(last, want), nil
}

// Apply installs the release, or upgrades it when its chart version or
// values differ from the deployed revision, or when the last revision
// failed or was left pending by an interrupted run (it is rolled forward).
// A deployed release with the same chart version and values is left alone:
// no new revision, changed=false. progress, when not nil, hears what is
// being waited for while Wait runs, and the revision the release ends at.
func (c *Client) Apply(ctx context.Context, rel Release, progress func(string)) (rev int, changed bool, err error) {
	want, err := c.prepare(rel)
	if err != nil {
		return 0, false, err
	}
	waits := newWaitReporter(rel, progress, c.log)
	cfg, err := c.actionConfig(rel.Namespace, waits.debugLog)
	if err != nil {
		return 0, false, err
	}
	last, err := lastRevision(ctx, cfg, rel.Name)
	if err != nil {
		return 0, false, err
	}
	change := decide(last, want)
	c.log(fmt.Sprintf("release %s/%s: %s: %s", rel.Namespace, rel.Name, change.Action, change.Reason))
	if change.Action == ActionNone {
		report(progress, "release %s/%s unchanged at revision %d", rel.Namespace, rel.Name, last.Version)
		return last.Version, false, nil
	}

	started := time.Now()
	if rel.Wait {
		stop := waits.start(ctx)
		defer stop()
	}
	var out *release.Release
	if change.Action == ActionInstall {
		out, err = c.install(ctx, cfg, rel, want, last != nil)
	} else {
		out, err = c.upgrade(ctx, cfg, rel, want, last)
	}
	if out != nil {
		rev = out.Version
	}
	if err != nil {
		return rev, rev > 0, fmt.Errorf("%s release %s in namespace %s (chart %s): %w", change.Action, rel.Name, rel.Namespace, rel.Chart, err)
	}
	if rel.Wait && len(rel.RolledOut) > 0 {
		if err := c.waitRolledOut(ctx, rel, started, progress); err != nil {
			return rev, true, fmt.Errorf("%s release %s in namespace %s (chart %s): %w", change.Action, rel.Name, rel.Namespace, rel.Chart, err)
		}
	}
	report(progress, "release %s/%s at revision %d", rel.Namespace, rel.Name, rev)
	return rev, true, nil
}

// report tells progress, when there is one.
func report(progress func(string), format string, args ...any) {
	if progress != nil {
		progress(fmt.Sprintf(format, args...))
	}
}

// Uninstall removes the release and its history. A release that does not
// exist is not an error.
func (c *Client) Uninstall(ctx context.Context, name, namespace string, wait bool) error {
	cfg, err := c.actionConfig(namespace, nil)
	if err != nil {
		return err
	}
	un := action.NewUninstall(cfg)
	un.Wait = wait
	un.Timeout = DefaultTimeout
	_, err = runCancellable(ctx, func() (*release.UninstallReleaseResponse, error) { return un.Run(name) })
	if err != nil && !errors.Is(err, driver.ErrReleaseNotFound) {
		return fmt.Errorf("uninstall release %s in namespace %s: %w", name, namespace, err)
	}
	return nil
}

// Status returns the release's latest revision, whatever its state, or
// nil, nil when there is no such release.
func (c *Client) Status(ctx context.Context, name, namespace string) (*release.Release, error) {
	cfg, err := c.actionConfig(namespace, nil)
	if err != nil {
		return nil, err
	}
	return lastRevision(ctx, cfg, name)
}

// wanted is a release's desired chart and values, ready to compare.
type wanted struct {
	chart  *chart.Chart
	values map[string]any
}

func (c *Client) prepare(rel Release) (wanted, error) {
	if rel.Name == "" || rel.Namespace == "" {
		return wanted{}, fault.Input("", "release", "give both a release name and a namespace",
			"release name %q or namespace %q is empty", rel.Name, rel.Namespace)
	}
	ch, err := c.loadChart(rel.Chart)
	if err != nil {
		return wanted{}, err
	}
	values, err := normalize(rel.Values)
	if err != nil {
		return wanted{}, fmt.Errorf("values of release %s: %w", rel.Name, err)
	}
	return wanted{chart: ch, values: values}, nil
}

// lastRevision is the release's newest revision, or nil when it has none.
func lastRevision(ctx context.Context, cfg *action.Configuration, name string) (*release.Release, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := cfg.KubeClient.IsReachable(); err != nil {
		return nil, err
	}
	last, err := cfg.Releases.Last(name)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read release %s: %w", name, err)
	}
	return last, nil
}

// decide compares the newest revision with what is wanted.
func decide(last *release.Release, want wanted) Change {
	meta := want.chart.Metadata
	if last == nil {
		return Change{Action: ActionInstall, Reason: fmt.Sprintf("not installed; chart %s %s", meta.Name, meta.Version)}
	}
	status := last.Info.Status
	if status == release.StatusUninstalled {
		return Change{Action: ActionInstall, Reason: fmt.Sprintf("uninstalled; chart %s %s", meta.Name, meta.Version)}
	}
	old, err := normalize(last.Config)
	if err != nil {
		old = last.Config
	}
	keys := changedKeys(old, want.values)
	upgrade := func(reason string) Change {
		return Change{Action: ActionUpgrade, Reason: reason, ChangedKeys: keys}
	}
	if last.Chart == nil || last.Chart.Metadata == nil {
		return upgrade(fmt.Sprintf("revision %d records no chart; replacing it", last.Version))
	}
	deployed := last.Chart.Metadata
	switch {
	case status.IsPending():
		return upgrade(fmt.Sprintf("revision %d left %s by an interrupted run; rolling forward", last.Version, status))
	case status != release.StatusDeployed:
		return upgrade(fmt.Sprintf("revision %d is %s; rolling forward", last.Version, status))
	case deployed.Name != meta.Name:
		return upgrade(fmt.Sprintf("chart %s replaces %s", meta.Name, deployed.Name))
	case deployed.Version != meta.Version:
		return upgrade(fmt.Sprintf("chart %s %s -> %s", meta.Name, deployed.Version, meta.Version))
	case len(keys) > 0:
		return upgrade("values changed: " + strings.Join(keys, ", "))
	}
	return Change{Action: ActionNone, Reason: fmt.Sprintf("chart %s %s deployed as revision %d with the same values", meta.Name, meta.Version, last.Version)}
}

func (c *Client) install(ctx context.Context, cfg *action.Configuration, rel Release, want wanted, replace bool) (*release.Release, error) {
	in := action.NewInstall(cfg)
	in.ReleaseName = rel.Name
	in.Namespace = rel.Namespace
	in.CreateNamespace = true
	in.Replace = replace // reuse the name of an uninstalled release kept in history
	in.Wait = rel.Wait
	in.Timeout = timeout(rel)
	if len(rel.Strategies) > 0 {
		in.PostRenderer = rel.Strategies
	}
	return in.RunWithContext(ctx, want.chart, want.values)
}

func (c *Client) upgrade(ctx context.Context, cfg *action.Configuration, rel Release, want wanted, last *release.Release) (*release.Release, error) {
	if last.Info.Status.IsPending() {
		// coderctl holds the state lock, so no other run owns this revision:
		// it was interrupted. Helm refuses to upgrade over a pending revision,
		// so mark it failed, which helm does roll forward.
		old := last.Info.Status
		last.Info.Status = release.StatusFailed
		last.Info.Description = fmt.Sprintf("marked failed by coderctl: an interrupted run left it %s", old)
		if err := cfg.Releases.Update(last); err != nil {
			return nil, fmt.Errorf("mark interrupted revision %d failed: %w", last.Version, err)
		}
	}
	up := action.NewUpgrade(cfg)
	up.Namespace = rel.Namespace
	up.Wait = rel.Wait
	up.Timeout = timeout(rel)
	up.MaxHistory = historyMax
	// The values given are complete: never reuse the previous revision's.
	up.ResetValues = true
	if len(rel.Strategies) > 0 {
		up.PostRenderer = rel.Strategies
	}
	return up.RunWithContext(ctx, rel.Name, want.chart, want.values)
}

// waitRolledOut finishes what helm's wait leaves: the named Deployments'
// rollouts, within what is left of the release's timeout.
func (c *Client) waitRolledOut(ctx context.Context, rel Release, started time.Time, progress func(string)) error {
	kc, err := kubernetes.NewForConfig(c.access.restConfig)
	if err != nil {
		return err
	}
	left := max(timeout(rel)-time.Since(started), time.Second)
	say := func(msg string) {
		c.log(msg)
		if progress != nil {
			progress(fmt.Sprintf("release %s/%s: %s", rel.Namespace, rel.Name, msg))
		}
	}
	return WaitRolledOut(ctx, kc, rel.Namespace, rel.RolledOut, left, say)
}

func timeout(rel Release) time.Duration {
	if rel.Timeout > 0 {
		return rel.Timeout
	}
	return DefaultTimeout
}

// runCancellable runs a helm action that takes no context, returning early
// with ctx's error when ctx ends first (the action finishes in background).
func runCancellable[T any](ctx context.Context, run func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := run()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}
