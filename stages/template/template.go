// Package template pushes the workspace template that fits this cluster
// (internal/wstemplate, rendered from the deployment: placement on the
// workspace node group, sizing from USERS) to Coder as template
// kubernetes-eks: file upload, template version, the import job waited
// for, then the template created or the new version promoted. A push is
// skipped when the active version already carries the same bytes
// (wstemplate.Hash), so a second `up` creates no version.
//
// It needs an owner's session (coderapi.Owner: CODER_SESSION_TOKEN, the
// first-user secret, or the first owner created from
// CODER_FIRST_USER_EMAIL) and is left pending with instructions without
// one. Its destroy deletes the first-user secret.
package template

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/coderapi"
	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/deploy"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/names"
	"github.com/coderctl/coderctl/internal/sizing"
	"github.com/coderctl/coderctl/internal/wstemplate"
)

// Name is the stage's registry name.
const Name = coderapi.FirstUserSecretStage

// Names in Coder.
const (
	displayName = "Kubernetes (EKS)"
	description = "A workspace pod on the EKS workspace node group, sized for this deployment, with a persistent home (pushed by coderctl)"
)

// Step and check names.
const (
	StepPush          = "push"
	StepFirstUser     = "first-user-secret"
	CheckActive       = "active-version"
	importTimeout     = 10 * time.Minute
	typicalPush       = 20 * time.Second
	typicalFirstUser  = time.Second
	defaultPollPeriod = time.Second
)

// New builds the template stage, reading CODER_SESSION_TOKEN from d's
// environment.
func New(d *deploy.Deps) engine.Stage {
	s := &stage{d: d, poll: importPoll(d)}
	return engine.Stage{
		Name:    Name,
		Summary: "workspace template " + coderapi.WorkspaceTemplateName + " pushed to Coder, rendered for this cluster",
		Needs:   []string{names.StageProvisioners},
		Reads: []string{config.KeyUsers, config.KeyCoderURL, coderapi.KeyCAFile,
			config.KeyFirstUserEmail, config.KeyFirstUserUsername},
		Steps: []engine.Step{
			// The import job needs a connected provisioner daemon: the
			// provisioners stage's checkpoint.
			{Name: StepPush, Needs: []string{names.StageProvisioners}, Typical: typicalPush, Plan: s.planPush, Apply: s.applyPush, Destroy: s.destroyPush},
			// Destroyed after the push step (it needs it): the owner's
			// password goes last.
			{Name: StepFirstUser, Typical: typicalFirstUser, Plan: s.planFirstUser, Apply: s.applyFirstUser, Destroy: s.destroyFirstUser},
		},
		Verify:   s.verify,
		Validate: s.validate,
	}
}

type stage struct {
	d *deploy.Deps
	// poll is how often the import job is asked about.
	poll time.Duration
}

// importPoll is the run's shortest waiter delay (tests and benchmarks
// shorten it), or 1 s.
func importPoll(d *deploy.Deps) time.Duration {
	if d.Opts.Wait.MinDelay > 0 {
		return d.Opts.Wait.MinDelay
	}
	return defaultPollPeriod
}

func (s *stage) owner() coderapi.Owner {
	return coderapi.OwnerForDeployment(s.d.Inputs, s.d.Getenv, s.d.AWS)
}

// Render is the template for this deployment: the files and their hash.
func Render(d *deploy.Deps) (map[string][]byte, string, error) {
	groups := d.NodeGroups()
	ws, _ := sizing.GroupFor(groups, sizing.RoleWorkspace)
	p, err := wstemplate.ForDeployment(groups, sizing.For(d.Inputs.Users(), ws.InstanceType), names.CoderNamespace)
	if err != nil {
		return nil, "", err
	}
	files, err := wstemplate.Render(p)
	if err != nil {
		return nil, "", err
	}
	return files, wstemplate.Hash(files), nil
}

// validate refuses a cluster config the template cannot be rendered for.
func (s *stage) validate(context.Context) error {
	if _, _, err := Render(s.d); err != nil {
		return fault.Input(s.d.ConfigPath, "managedNodeGroups", "give the workspace node group the label and taint coder/node-type=workspace:NoSchedule", "%v", err)
	}
	return nil
}

// pendingNoOwner is the pending state without an owner's session.
func pendingNoOwner(err error) error {
	return engine.Pending("no Coder owner session (%v): %s, then re-run 'coderctl up'", err, coderapi.OwnerHint)
}

// remote is what Coder has: the template (nil when none) and the hash of
// its active version's file.
type remote struct {
	org        string
	tpl        *coderapi.Template
	activeHash string
	active     coderapi.TemplateVersion
}

func (s *stage) readRemote(ctx context.Context, c *coderapi.Client) (remote, error) {
	org, err := c.DefaultOrganization(ctx)
	if err != nil {
		return remote{}, err
	}
	r := remote{org: org.ID}
	if r.tpl, err = c.TemplateByName(ctx, org.ID, coderapi.WorkspaceTemplateName); err != nil || r.tpl == nil {
		return r, err
	}
	if r.active, err = c.TemplateVersion(ctx, r.tpl.ActiveVersionID); err != nil {
		return r, err
	}
	r.activeHash, err = c.FileHash(ctx, r.active.Job.FileID)
	return r, err
}

func (s *stage) planPush(ctx context.Context) ([]engine.Action, error) {
	resource := "Coder template " + coderapi.WorkspaceTemplateName
	_, hash, err := Render(s.d)
	if err != nil {
		return nil, err
	}
	sess, err := s.owner().Session(ctx, false)
	if err != nil {
		return []engine.Action{{Kind: engine.Create, Resource: resource, Reason: fmt.Sprintf("push the template for this cluster (Coder not asked: %v)", fault.FirstLine(err.Error()))}}, nil
	}
	r, err := s.readRemote(ctx, sess.Client)
	switch {
	case err != nil:
		return []engine.Action{{Kind: engine.Create, Resource: resource, Reason: fmt.Sprintf("push the template (Coder not asked: %v)", fault.FirstLine(err.Error()))}}, nil
	case r.tpl == nil:
		return []engine.Action{{Kind: engine.Create, Resource: resource, Reason: "create the template from this cluster's rendering (sha256 " + short(hash) + ")"}}, nil
	case r.activeHash != hash:
		return []engine.Action{{Kind: engine.Update, Resource: resource, Reason: fmt.Sprintf("push a new version (sha256 %s) and promote it over the active %s (sha256 %s)", short(hash), r.active.Name, short(r.activeHash))}}, nil
	}
	return []engine.Action{{Kind: engine.Nothing, Resource: resource, Reason: "the active version " + r.active.Name + " is this cluster's rendering"}}, nil
}

func (s *stage) applyPush(ctx context.Context, rep engine.Reporter) error {
	files, hash, err := Render(s.d)
	if err != nil {
		return err
	}
	archive, err := wstemplate.Tar(files)
	if err != nil {
		return err
	}
	sess, err := s.owner().Session(ctx, true)
	if coderapi.IsNoOwner(err) {
		return pendingNoOwner(err)
	}
	if err != nil {
		return s.explain(err)
	}
	if sess.Created {
		rep.Progress(fmt.Sprintf("created Coder's first owner %s; its password is only in Secrets Manager as %s", s.owner().Username(), s.owner().SecretName()))
	}
	c := sess.Client
	r, err := s.readRemote(ctx, c)
	if err != nil {
		return s.explain(err)
	}
	if r.tpl != nil && r.activeHash == hash {
		rep.Progress("the active version " + r.active.Name + " already carries this rendering")
		return nil
	}
	fileID, err := c.Upload(ctx, coderapi.ContentTypeTar, archive)
	if err != nil {
		return s.explain(err)
	}
	nv := coderapi.NewVersion{FileID: fileID, Message: "pushed by coderctl: sha256 " + hash}
	if r.tpl != nil {
		nv.TemplateID = r.tpl.ID
	}
	v, err := c.CreateTemplateVersion(ctx, r.org, nv)
	if err != nil {
		return s.explain(err)
	}
	rep.Progress("template version " + v.Name + " created: waiting for its import job")
	wctx, cancel := context.WithTimeout(ctx, importTimeout)
	defer cancel()
	v, err = c.WaitForImport(wctx, v.ID, coderapi.Poll{Interval: s.poll, Progress: func(st string) { rep.Progress("import job " + st) }})
	if je, ok := coderapi.AsJobError(err); ok {
		return fmt.Errorf("%v\n%s", je, je.LastLines())
	}
	if err != nil {
		return s.explain(err)
	}
	if r.tpl == nil {
		t, err := c.CreateTemplate(ctx, r.org, coderapi.NewTemplate{Name: coderapi.WorkspaceTemplateName, DisplayName: displayName, Description: description, VersionID: v.ID})
		if err != nil {
			return s.explain(err)
		}
		rep.Progress(fmt.Sprintf("template %s created (id %s) with version %s", coderapi.WorkspaceTemplateName, t.ID, v.Name))
		return nil
	}
	if err := c.PromoteVersion(ctx, r.tpl.ID, v.ID); err != nil {
		return s.explain(err)
	}
	rep.Progress(fmt.Sprintf("template %s: version %s promoted to active", coderapi.WorkspaceTemplateName, v.Name))
	return nil
}

// explain turns coderd's refusals into what to do.
func (s *stage) explain(err error) error {
	switch {
	case coderapi.IsUnauthorized(err):
		return fmt.Errorf("coderd at %s refused the owner session (%w): %s", s.d.Inputs.CoderURL(), err, coderapi.OwnerHint)
	case coderapi.IsForbidden(err):
		return fmt.Errorf("the session's user may not manage templates (%w): use an owner's or template admin's session", err)
	case coderapi.IsUnreachable(err):
		return fmt.Errorf("%w (%s)", err, coderapi.UnreachableHint(s.d.Inputs, s.d.State.Get(names.KeyNLBHostname), err))
	}
	return err
}

// destroyPush leaves the template in Coder: it lives in Coder's database,
// which the rds stage's destroy removes, and coderd refuses to delete a
// template while workspaces use it.
func (s *stage) destroyPush(_ context.Context, rep engine.Reporter) error {
	rep.Progress("template " + coderapi.WorkspaceTemplateName + " is left in Coder's database (it goes with the database)")
	return nil
}

func (s *stage) planFirstUser(context.Context) ([]engine.Action, error) {
	return []engine.Action{{Kind: engine.Nothing, Resource: "secret " + s.owner().SecretName(),
		Reason: "written when `up` creates Coder's first owner from " + config.KeyFirstUserEmail}}, nil
}

// applyFirstUser has nothing to do: the secret is written by the first
// step that needs an owner (the provisioners key, or the push).
func (s *stage) applyFirstUser(context.Context, engine.Reporter) error { return nil }

// destroyFirstUser deletes the first-user secret with a recovery window
// (restorable for 7 days), or at once with --force-delete-secrets.
func (s *stage) destroyFirstUser(ctx context.Context, rep engine.Reporter) error {
	o := s.owner()
	store, ok := o.Store.(coderapi.FirstUserStore)
	if !ok {
		return errors.New("AWS is not connected: cannot delete secret " + o.SecretName())
	}
	// Log in before the password goes: `down` destroys the provisioners
	// stage after this one, and its key is deleted through the Coder API
	// with this process's session (kept in memory only).
	_, _ = o.Session(ctx, false)
	deleted, err := store.Delete(ctx, o.SecretName(), s.d.Opts.ForceDeleteSecrets)
	if err != nil {
		return err
	}
	switch {
	case !deleted:
		rep.Progress("secret " + o.SecretName() + " is already gone")
	case s.d.Opts.ForceDeleteSecrets:
		rep.Progress("secret " + o.SecretName() + " deleted without recovery")
	default:
		rep.Notice(fmt.Sprintf("secret %s (Coder's first owner's password) scheduled for deletion in %d days; restore it with `aws secretsmanager restore-secret --secret-id %s` while Coder's database lives",
			o.SecretName(), awsx.SecretRecoveryWindowDays, o.SecretName()), map[string]any{"secret": o.SecretName()})
	}
	return nil
}

func short(hash string) string {
	if len(hash) > 12 {
		return hash[:12]
	}
	return hash
}
