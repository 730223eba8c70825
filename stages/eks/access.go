package eks

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/kube"
)

// StepAccessEntries converges accessConfig.accessEntries.
const StepAccessEntries = "access-entries"

// accessWant is what accessConfig asks for, with eksctl's defaults.
type accessWant struct {
	mode      ekstypes.AuthenticationMode
	bootstrap bool
	entries   []entryWant
}

// entryWant is one access entry of the file.
type entryWant struct {
	index     int
	principal string
	kind      string // STANDARD when unset
	groups    []string
	username  string
	policies  map[string]scopeWant // policy ARN -> scope
}

type scopeWant struct {
	kind       string
	namespaces []string // sorted
}

func (s *stage) accessWant() accessWant {
	w := accessWant{mode: ekstypes.AuthenticationModeApiAndConfigMap, bootstrap: true}
	ac := s.d.Cluster.AccessConfig
	if ac == nil {
		return w
	}
	if ac.AuthenticationMode != "" {
		w.mode = ac.AuthenticationMode
	}
	if ac.BootstrapClusterCreatorAdminPermissions != nil {
		w.bootstrap = *ac.BootstrapClusterCreatorAdminPermissions
	}
	for i, e := range ac.AccessEntries {
		ew := entryWant{index: i, principal: e.PrincipalARN.String(), kind: e.Type, groups: sortedCopy(e.KubernetesGroups),
			username: e.KubernetesUsername, policies: map[string]scopeWant{}}
		if ew.kind == "" {
			ew.kind = "STANDARD"
		}
		for _, p := range e.AccessPolicies {
			ew.policies[p.PolicyARN.String()] = scopeWant{kind: string(p.AccessScope.Type), namespaces: sortedCopy(p.AccessScope.Namespaces)}
		}
		w.entries = append(w.entries, ew)
	}
	return w
}

func sortedCopy(l []string) []string {
	out := slices.Clone(l)
	sort.Strings(out)
	return out
}

// usesAPI reports whether the mode has access entries at all.
func usesAPI(mode ekstypes.AuthenticationMode) bool {
	return mode != ekstypes.AuthenticationModeConfigMap
}

// entryHave is an access entry as EKS describes it, with its policies
// keyed by ARN and whether coderctl made it.
type entryHave struct {
	entry    kube.AccessEntry
	policies map[string]scopeWant
	mine     bool
}

// readEntries lists the cluster's access entries with their policies.
func (s *stage) readEntries(ctx context.Context) (map[string]*entryHave, error) {
	entries, err := kube.ListAccessEntries(ctx, s.d.AWS.EKS, s.clusterName())
	if err != nil {
		return nil, err
	}
	out := map[string]*entryHave{}
	for _, e := range entries {
		h := &entryHave{entry: e, policies: map[string]scopeWant{}, mine: s.ownedBy(e.Tags)}
		for _, p := range e.Policies {
			h.policies[p.ARN] = scopeWant{kind: p.Scope, namespaces: p.Namespaces}
		}
		out[e.Principal] = h
	}
	return out, nil
}

// entryChange is what converging one principal takes.
type entryChange struct {
	principal string
	want      *entryWant
	have      *entryHave
	// create, replace (type changed), remove, update (groups, username)
	create, replace, remove, update bool
	associate                       []string // policy ARNs to (re)associate
	disassociate                    []string
}

func (c entryChange) empty() bool {
	return !c.create && !c.replace && !c.remove && !c.update && len(c.associate)+len(c.disassociate) == 0
}

// accessChanges compares the file's entries with the cluster's. Entries
// coderctl did not make (the creator's, other people's) are never changed
// or removed; a listed principal that has one is left as it is.
func accessChanges(want accessWant, have map[string]*entryHave) (changes []entryChange, foreign []string) {
	listed := map[string]bool{}
	for i := range want.entries {
		w := &want.entries[i]
		listed[w.principal] = true
		h := have[w.principal]
		c := entryChange{principal: w.principal, want: w, have: h}
		switch {
		case h == nil:
			c.create, c.associate = true, slices.Sorted(maps.Keys(w.policies))
		case !h.mine:
			foreign = append(foreign, w.principal)
			continue
		case h.entry.Type != w.kind:
			c.replace, c.associate = true, slices.Sorted(maps.Keys(w.policies))
		default:
			c.update = !slices.Equal(h.entry.Groups, w.groups) || (w.username != "" && h.entry.Username != w.username)
			c.associate, c.disassociate = policyDiff(w.policies, h.policies)
		}
		changes = append(changes, c)
	}
	for p, h := range have {
		if h.mine && !listed[p] {
			changes = append(changes, entryChange{principal: p, have: h, remove: true})
		}
	}
	sort.Slice(changes, func(i, j int) bool { return changes[i].principal < changes[j].principal })
	return changes, foreign
}

func policyDiff(want, have map[string]scopeWant) (associate, disassociate []string) {
	for p, w := range want {
		if h, ok := have[p]; !ok || h.kind != w.kind || !slices.Equal(h.namespaces, w.namespaces) {
			associate = append(associate, p)
		}
	}
	for p := range have {
		if _, ok := want[p]; !ok {
			disassociate = append(disassociate, p)
		}
	}
	sort.Strings(associate)
	sort.Strings(disassociate)
	return associate, disassociate
}

func (c entryChange) words() string {
	var parts []string
	switch {
	case c.create:
		parts = append(parts, "create ("+c.want.kind+groupWords(c.want.groups)+")")
	case c.replace:
		parts = append(parts, fmt.Sprintf("replace: type %s, want %s", c.have.entry.Type, c.want.kind))
	case c.remove:
		return "not in accessConfig.accessEntries: delete it (coderctl made it)"
	case c.update:
		parts = append(parts, "update Kubernetes groups/username to"+groupWords(c.want.groups)+" "+c.want.username)
	}
	for _, p := range c.associate {
		parts = append(parts, "associate "+policyName(p)+" ("+c.want.policies[p].words()+")")
	}
	for _, p := range c.disassociate {
		parts = append(parts, "disassociate "+policyName(p))
	}
	return strings.Join(parts, "; ")
}

func groupWords(g []string) string {
	if len(g) == 0 {
		return ""
	}
	return ", groups " + strings.Join(g, ",")
}

func (sc scopeWant) words() string {
	if sc.kind == string(ekstypes.AccessScopeTypeNamespace) {
		return "namespaces " + strings.Join(sc.namespaces, ",")
	}
	return sc.kind
}

// policyName is the policy's name, the last part of its ARN.
func policyName(p string) string { return p[strings.LastIndex(p, "/")+1:] }

func entryResource(principal string) string { return "access-entry/" + principal }

// planAccessEntries shows each entry's change, or that it is as configured.
func (s *stage) planAccessEntries(ctx context.Context) ([]engine.Action, error) {
	want := s.accessWant()
	c, err := s.describeCluster(ctx)
	if err != nil {
		return nil, err
	}
	if c == nil || !usesAPI(clusterMode(c, want.mode)) {
		var acts []engine.Action
		for _, e := range want.entries {
			acts = append(acts, engine.Action{Kind: engine.Create, Resource: entryResource(e.principal), Reason: "create with the cluster (" + e.kind + groupWords(e.groups) + ")"})
		}
		return acts, nil
	}
	have, err := s.readEntries(ctx)
	if err != nil {
		return nil, err
	}
	changes, foreign := accessChanges(want, have)
	var acts []engine.Action
	for _, ch := range changes {
		kind := engine.Update
		switch {
		case ch.empty():
			acts = append(acts, engine.Action{Kind: engine.Nothing, Resource: entryResource(ch.principal), Reason: "as configured"})
			continue
		case ch.create:
			kind = engine.Create
		case ch.remove:
			kind = engine.Delete
		}
		acts = append(acts, engine.Action{Kind: kind, Resource: entryResource(ch.principal), Reason: ch.words()})
	}
	for _, p := range foreign {
		acts = append(acts, engine.Action{Kind: engine.Nothing, Resource: entryResource(p), Reason: "exists and was not made by coderctl: left as it is"})
	}
	return acts, nil
}

// clusterMode is the cluster's authentication mode (def when EKS says none).
func clusterMode(c *ekstypes.Cluster, def ekstypes.AuthenticationMode) ekstypes.AuthenticationMode {
	if c.AccessConfig != nil && c.AccessConfig.AuthenticationMode != "" {
		return c.AccessConfig.AuthenticationMode
	}
	return def
}

// applyAccessEntries converges the entries coderctl manages.
func (s *stage) applyAccessEntries(ctx context.Context, r engine.Reporter) error {
	want := s.accessWant()
	if !usesAPI(want.mode) {
		return nil // eksctl refuses accessEntries with CONFIG_MAP
	}
	have, err := s.readEntries(ctx)
	if err != nil {
		return err
	}
	changes, foreign := accessChanges(want, have)
	for _, p := range foreign {
		r.Notice(fmt.Sprintf("access entry %s exists and was not made by coderctl: left as it is", p), map[string]any{"principal": p})
	}
	for _, ch := range changes {
		if ch.empty() {
			continue
		}
		r.Progress("access entry " + ch.principal + ": " + ch.words())
		if err := s.applyEntry(ctx, ch); err != nil {
			return err
		}
	}
	return nil
}

func (s *stage) applyEntry(ctx context.Context, ch entryChange) error {
	cluster, principal := aws.String(s.clusterName()), aws.String(ch.principal)
	if ch.remove || ch.replace {
		_, err := s.d.AWS.EKS.DeleteAccessEntry(ctx, &eks.DeleteAccessEntryInput{ClusterName: cluster, PrincipalArn: principal})
		if err != nil && !awsx.IsNotFound(err) {
			return awsx.Describe("EKS DeleteAccessEntry "+ch.principal, err)
		}
		if ch.remove {
			return nil
		}
	}
	w := ch.want
	if ch.create || ch.replace {
		in := &eks.CreateAccessEntryInput{ClusterName: cluster, PrincipalArn: principal, Type: aws.String(w.kind),
			KubernetesGroups: w.groups, Tags: s.tags(ch.principal)}
		if w.username != "" {
			in.Username = aws.String(w.username)
		}
		if _, err := s.d.AWS.EKS.CreateAccessEntry(ctx, in); err != nil {
			return awsx.Describe("EKS CreateAccessEntry "+ch.principal, err)
		}
	}
	if ch.update {
		in := &eks.UpdateAccessEntryInput{ClusterName: cluster, PrincipalArn: principal, KubernetesGroups: w.groups}
		if in.KubernetesGroups == nil {
			in.KubernetesGroups = []string{}
		}
		if w.username != "" {
			in.Username = aws.String(w.username)
		}
		if _, err := s.d.AWS.EKS.UpdateAccessEntry(ctx, in); err != nil {
			return awsx.Describe("EKS UpdateAccessEntry "+ch.principal, err)
		}
	}
	for _, p := range ch.associate {
		sc := w.policies[p]
		_, err := s.d.AWS.EKS.AssociateAccessPolicy(ctx, &eks.AssociateAccessPolicyInput{ClusterName: cluster, PrincipalArn: principal, PolicyArn: aws.String(p),
			AccessScope: &ekstypes.AccessScope{Type: ekstypes.AccessScopeType(sc.kind), Namespaces: sc.namespaces}})
		if err != nil {
			return awsx.Describe("EKS AssociateAccessPolicy "+policyName(p)+" to "+ch.principal, err)
		}
	}
	for _, p := range ch.disassociate {
		_, err := s.d.AWS.EKS.DisassociateAccessPolicy(ctx, &eks.DisassociateAccessPolicyInput{ClusterName: cluster, PrincipalArn: principal, PolicyArn: aws.String(p)})
		if err != nil && !awsx.IsNotFound(err) {
			return awsx.Describe("EKS DisassociateAccessPolicy "+policyName(p)+" from "+ch.principal, err)
		}
	}
	return nil
}

// destroyAccessEntries does nothing: deleting the cluster deletes its
// entries, and the run that destroys needs its own entry until then.
func (s *stage) destroyAccessEntries(context.Context, engine.Reporter) error { return nil }

// checkAccessEntries verifies that every entry of the file exists with its
// groups and policies.
func (s *stage) checkAccessEntries(ctx context.Context) engine.Check {
	const name = "access-entries"
	want := s.accessWant()
	if !usesAPI(want.mode) {
		return engine.Passf(name, "authentication mode CONFIG_MAP: no access entries")
	}
	have, err := s.readEntries(ctx)
	if err != nil {
		return engine.Failf(name, "", "%v", err)
	}
	changes, _ := accessChanges(want, have)
	var drift []string
	for _, ch := range changes {
		if !ch.empty() {
			drift = append(drift, ch.principal+": "+ch.words())
		}
	}
	if len(drift) > 0 {
		return engine.Failf(name, applyHint+" to converge them", "%s", strings.Join(drift, "; "))
	}
	var listed []string
	for _, p := range slices.Sorted(maps.Keys(have)) {
		listed = append(listed, p+" ("+strings.Join(namesOf(have[p].policies), ",")+")")
	}
	return engine.Passf(name, "%d entries: %s", len(have), strings.Join(listed, "; "))
}

func namesOf(m map[string]scopeWant) []string {
	var out []string
	for _, p := range slices.Sorted(maps.Keys(m)) {
		out = append(out, policyName(p))
	}
	return out
}
