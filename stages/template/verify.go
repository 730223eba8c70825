package template

import (
	"context"
	"fmt"

	"github.com/coderctl/coderctl/internal/coderapi"
	"github.com/coderctl/coderctl/internal/engine"
)

// verify checks that the active version of kubernetes-eks is the one
// coderctl pushed: its file's sha256 is this cluster's rendering, and its
// import succeeded.
func (s *stage) verify(ctx context.Context) []engine.Check {
	return []engine.Check{s.checkActive(ctx)}
}

func (s *stage) checkActive(ctx context.Context) engine.Check {
	hint := fmt.Sprintf("run 'coderctl stage %s apply': it pushes this cluster's template and promotes it", Name)
	_, hash, err := Render(s.d)
	if err != nil {
		return engine.Failf(CheckActive, "fix the workspace node group in the cluster config", "%v", err)
	}
	sess, err := s.owner().Session(ctx, false)
	if coderapi.IsNoOwner(err) {
		return engine.Warnf(CheckActive, coderapi.OwnerHint, "template %s not checked: no owner session (%v)", coderapi.WorkspaceTemplateName, err)
	}
	if err != nil {
		return engine.Failf(CheckActive, "check CODER_URL, CODER_CA_FILE and the session", "%v", s.explain(err))
	}
	r, err := s.readRemote(ctx, sess.Client)
	switch {
	case err != nil:
		return engine.Failf(CheckActive, hint, "%v", s.explain(err))
	case r.tpl == nil:
		return engine.Failf(CheckActive, hint, "Coder has no template %s", coderapi.WorkspaceTemplateName)
	case r.active.Job.Status != coderapi.JobSucceeded:
		return engine.Failf(CheckActive, hint, "the active version %s of %s did not import (job %s)", r.active.Name, coderapi.WorkspaceTemplateName, r.active.Job.Status)
	case r.activeHash != hash:
		return engine.Failf(CheckActive, hint, "the active version %s of %s (sha256 %s) is not this cluster's rendering (sha256 %s): changed outside coderctl, or the sizing changed",
			r.active.Name, coderapi.WorkspaceTemplateName, short(r.activeHash), short(hash))
	}
	return engine.Passf(CheckActive, "the active version %s of %s is this cluster's rendering (sha256 %s)", r.active.Name, coderapi.WorkspaceTemplateName, short(hash))
}
