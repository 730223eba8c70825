package coderapi

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// The double reads a template's Terraform the way a provisioner would
// plan it, with github.com/hashicorp/hcl/v2, and knows exactly the
// resource and data source types of the template coderctl ships
// (internal/wstemplate). Anything else fails the import or the build with
// a message naming it; nothing is skipped.

// Resource types the double can plan and apply.
const (
	resCoderAgent = "coder_agent"
	resPVC        = "kubernetes_persistent_volume_claim"
	resPVCv1      = "kubernetes_persistent_volume_claim_v1"
	resDeploy     = "kubernetes_deployment"
	resDeployV1   = "kubernetes_deployment_v1"
)

var supportedResources = map[string]bool{resCoderAgent: true, resPVC: true, resPVCv1: true, resDeploy: true, resDeployV1: true}

// Data sources the double provides.
var supportedData = map[string]bool{"coder_workspace": true, "coder_workspace_owner": true}

// Providers a template may configure.
var supportedProviders = map[string]bool{"coder": true, "kubernetes": true}

// tfTemplate is a parsed template: its variables, locals, data sources
// and resources, each resource in file order.
type tfTemplate struct {
	variables map[string]cty.Value // with defaults or given values
	locals    map[string]*hclsyntax.Attribute
	data      map[string]*tfBlock // "type.name"
	resources []*tfBlock
	byAddr    map[string]*tfBlock // "type.name"
}

type tfBlock struct {
	typ, name string
	body      *hclsyntax.Body
}

func (b *tfBlock) addr() string { return b.typ + "." + b.name }

// templateError is a template the double cannot read; the job fails with
// its message.
type templateError struct{ msg string }

func (e *templateError) Error() string { return e.msg }

func tplErrorf(format string, args ...any) error {
	return &templateError{msg: fmt.Sprintf(format, args...)}
}

func diagError(diags hcl.Diagnostics) error {
	return &templateError{msg: diags.Error()}
}

// parseTemplate reads the .tf files at the top of a tar archive (the
// root module, as coderd hands it to the provisioner) and the variables'
// values: the request's, else the defaults. A variable without either
// fails as coderd's REQUIRED_TEMPLATE_VARIABLES does.
func parseTemplate(archive []byte, values []variableValue) (*tfTemplate, error) {
	tr := tar.NewReader(bytes.NewReader(archive))
	parser := map[string]*hclsyntax.Body{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, tplErrorf("read template archive: %v", err)
		}
		name := path.Clean(strings.TrimPrefix(hdr.Name, "./"))
		if hdr.Typeflag != tar.TypeReg || strings.Contains(name, "/") {
			continue // modules in subdirectories are refused below if used
		}
		switch {
		case strings.HasSuffix(name, ".tf.json"):
			return nil, tplErrorf("%s: Terraform JSON syntax is not supported by the coderapi double", name)
		case strings.HasSuffix(name, ".tf"):
			src, err := io.ReadAll(tr)
			if err != nil {
				return nil, tplErrorf("read %s: %v", name, err)
			}
			f, diags := hclsyntax.ParseConfig(src, name, hcl.InitialPos)
			if diags.HasErrors() {
				return nil, diagError(diags)
			}
			parser[name] = f.Body.(*hclsyntax.Body)
		}
	}
	if len(parser) == 0 {
		return nil, tplErrorf("no Terraform files (.tf) at the top of the template archive")
	}
	t := &tfTemplate{variables: map[string]cty.Value{}, locals: map[string]*hclsyntax.Attribute{}, data: map[string]*tfBlock{}, byAddr: map[string]*tfBlock{}}
	given := map[string]string{}
	for _, v := range values {
		given[v.Name] = v.Value
	}
	names := make([]string, 0, len(parser))
	for name := range parser {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := t.add(name, parser[name], given); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func (t *tfTemplate) add(file string, body *hclsyntax.Body, given map[string]string) error {
	if len(body.Attributes) > 0 {
		for name := range body.Attributes {
			return tplErrorf("%s: unexpected top-level argument %q", file, name)
		}
	}
	for _, b := range body.Blocks {
		at := fmt.Sprintf("%s:%d", file, b.TypeRange.Start.Line)
		switch b.Type {
		case "terraform", "output":
		case "provider":
			if !supportedProviders[b.Labels[0]] {
				return tplErrorf("%s: provider %q is not supported by the coderapi double (only coder and kubernetes)", at, b.Labels[0])
			}
		case "variable":
			v, err := variableValueOf(b, given)
			if err != nil {
				return err
			}
			t.variables[b.Labels[0]] = v
		case "locals":
			for name, attr := range b.Body.Attributes {
				if _, dup := t.locals[name]; dup {
					return tplErrorf("%s: duplicate local value %q", at, name)
				}
				t.locals[name] = attr
			}
		case "data":
			if !supportedData[b.Labels[0]] {
				return tplErrorf("%s: data source type %q is not supported by the coderapi double", at, b.Labels[0])
			}
			t.data[b.Labels[0]+"."+b.Labels[1]] = &tfBlock{typ: b.Labels[0], name: b.Labels[1], body: b.Body}
		case "resource":
			if !supportedResources[b.Labels[0]] {
				return tplErrorf("%s: resource type %q is not supported by the coderapi double", at, b.Labels[0])
			}
			rb := &tfBlock{typ: b.Labels[0], name: b.Labels[1], body: b.Body}
			if _, dup := t.byAddr[rb.addr()]; dup {
				return tplErrorf("%s: duplicate resource %s", at, rb.addr())
			}
			if _, ok := b.Body.Attributes["for_each"]; ok {
				return tplErrorf("%s: %s: for_each is not supported by the coderapi double", at, rb.addr())
			}
			t.resources = append(t.resources, rb)
			t.byAddr[rb.addr()] = rb
		default:
			return tplErrorf("%s: %q blocks are not supported by the coderapi double", at, b.Type)
		}
	}
	return nil
}

// variableValueOf is a variable's value: the given string converted to
// its type, else its default.
func variableValueOf(b *hclsyntax.Block, given map[string]string) (cty.Value, error) {
	name := b.Labels[0]
	typ := cty.DynamicPseudoType
	if attr, ok := b.Body.Attributes["type"]; ok {
		t, diags := typeexpr.TypeConstraint(attr.Expr)
		if diags.HasErrors() {
			return cty.NilVal, diagError(diags)
		}
		typ = t
	}
	if raw, ok := given[name]; ok {
		if typ == cty.DynamicPseudoType {
			return cty.StringVal(raw), nil
		}
		v, err := convert.Convert(cty.StringVal(raw), typ)
		if err != nil {
			return cty.NilVal, tplErrorf("variable %q: value %q: %v", name, raw, err)
		}
		return v, nil
	}
	attr, ok := b.Body.Attributes["default"]
	if !ok {
		return cty.NilVal, &requiredVariableError{name: name}
	}
	v, diags := attr.Expr.Value(nil)
	if diags.HasErrors() {
		return cty.NilVal, diagError(diags)
	}
	if typ != cty.DynamicPseudoType {
		c, err := convert.Convert(v, typ)
		if err != nil {
			return cty.NilVal, tplErrorf("variable %q: default: %v", name, err)
		}
		v = c
	}
	return v, nil
}

// requiredVariableError is coderd's REQUIRED_TEMPLATE_VARIABLES failure.
type requiredVariableError struct{ name string }

func (e *requiredVariableError) Error() string {
	return fmt.Sprintf("required template variables need values: %s", e.name)
}

// tfWorkspace is what a build's data sources and coder_agent resources
// say about the workspace being built.
type tfWorkspace struct {
	id, name, transition string
	startCount           int
	ownerID, ownerName   string
	ownerFullName        string
	ownerEmail           string
	templateID           string
	templateName         string
	templateVersion      string
	accessURL            string
	agents               map[string]agentIdentity // by coder_agent name
}

// agentIdentity is what the coder provider computes for a coder_agent.
type agentIdentity struct{ id, token, initScript string }

// tfInstance is one planned resource instance.
type tfInstance struct {
	typ, name string
	index     int // -1 without count
	attrs     map[string]any
	agentRefs []string // coder_agent names its arguments refer to
}

func (i *tfInstance) addr() string {
	if i.index < 0 {
		return i.typ + "." + i.name
	}
	return fmt.Sprintf("%s.%s[%d]", i.typ, i.name, i.index)
}

// tfPlan is the template evaluated for one workspace and transition, its
// instances in an order that respects every reference and depends_on.
type tfPlan struct {
	instances []*tfInstance
}

// Arguments that steer Terraform rather than describe the object.
var metaArguments = map[string]bool{"count": true, "depends_on": true, "provider": true, "lifecycle": true, "timeouts": true}

// functions are the Terraform functions the double evaluates.
var functions = map[string]function.Function{
	"lower": stdlib.LowerFunc, "upper": stdlib.UpperFunc, "join": stdlib.JoinFunc, "format": stdlib.FormatFunc,
	"replace": stdlib.ReplaceFunc, "substr": stdlib.SubstrFunc, "merge": stdlib.MergeFunc, "lookup": stdlib.LookupFunc,
	"length": stdlib.LengthFunc, "concat": stdlib.ConcatFunc, "trimspace": stdlib.TrimSpaceFunc,
	"coalesce": stdlib.CoalesceFunc, "jsonencode": stdlib.JSONEncodeFunc, "min": stdlib.MinFunc, "max": stdlib.MaxFunc,
}

// plan evaluates every local and resource for ws, in dependency order.
func (t *tfTemplate) plan(ws tfWorkspace) (*tfPlan, error) {
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{}, Functions: functions}
	ctx.Variables["var"] = cty.ObjectVal(t.variables)
	ctx.Variables["data"] = t.dataValues(ws)
	locals := map[string]cty.Value{}
	resources := map[string]map[string]cty.Value{} // type → name → value
	set := func() {
		ctx.Variables["local"] = cty.ObjectVal(locals)
		for typ, byName := range resources {
			ctx.Variables[typ] = cty.ObjectVal(byName)
		}
	}
	set()

	// nodes: "local.X" and resource addresses, each with what it refers to.
	deps := map[string][]string{}
	for name, attr := range t.locals {
		refs, err := t.references("local."+name, attr.Expr.Variables())
		if err != nil {
			return nil, err
		}
		deps["local."+name] = refs
	}
	for _, r := range t.resources {
		refs, err := t.references(r.addr(), bodyTraversals(r.body))
		if err != nil {
			return nil, err
		}
		deps[r.addr()] = refs
	}
	done := map[string]bool{}
	p := &tfPlan{}
	order := make([]string, 0, len(deps))
	for n := range deps {
		order = append(order, n)
	}
	sort.Strings(order)
	for len(done) < len(deps) {
		progress := false
		for _, node := range order {
			if done[node] || !allDone(deps[node], done) {
				continue
			}
			progress, done[node] = true, true
			if name, ok := strings.CutPrefix(node, "local."); ok {
				v, diags := t.locals[name].Expr.Value(ctx)
				if diags.HasErrors() {
					return nil, diagError(diags)
				}
				locals[name] = v
				set()
				continue
			}
			r := t.byAddr[node]
			value, instances, err := t.planResource(r, ctx, ws, deps[node])
			if err != nil {
				return nil, err
			}
			if resources[r.typ] == nil {
				resources[r.typ] = map[string]cty.Value{}
			}
			resources[r.typ][r.name] = value
			set()
			p.instances = append(p.instances, instances...)
		}
		if !progress {
			var stuck []string
			for _, node := range order {
				if !done[node] {
					stuck = append(stuck, node)
				}
			}
			return nil, tplErrorf("Cycle: %s", strings.Join(stuck, ", "))
		}
	}
	return p, nil
}

func allDone(refs []string, done map[string]bool) bool {
	for _, r := range refs {
		if !done[r] {
			return false
		}
	}
	return true
}

// references maps an object's traversals to the locals and resources it
// needs, refusing references Terraform would refuse.
func (t *tfTemplate) references(from string, traversals []hcl.Traversal) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, tr := range traversals {
		root := tr.RootName()
		at := tr.SourceRange().String()
		attr := func() string {
			if len(tr) > 1 {
				if a, ok := tr[1].(hcl.TraverseAttr); ok {
					return a.Name
				}
			}
			return ""
		}
		var node string
		switch root {
		case "var":
			if _, ok := t.variables[attr()]; !ok {
				return nil, tplErrorf("%s: Reference to undeclared input variable %q", at, attr())
			}
		case "local":
			if _, ok := t.locals[attr()]; !ok {
				return nil, tplErrorf("%s: Reference to undeclared local value %q", at, attr())
			}
			node = "local." + attr()
		case "data":
			name := ""
			if len(tr) > 2 {
				if a, ok := tr[2].(hcl.TraverseAttr); ok {
					name = a.Name
				}
			}
			if _, ok := t.data[attr()+"."+name]; !ok {
				return nil, tplErrorf("%s: Reference to undeclared data source data.%s.%s", at, attr(), name)
			}
		case "count":
			if attr() != "index" {
				return nil, tplErrorf("%s: invalid count reference", at)
			}
		case "path", "terraform", "module", "each", "self":
			return nil, tplErrorf("%s: %s references are not supported by the coderapi double", at, root)
		default:
			if _, ok := t.byAddr[root+"."+attr()]; !ok {
				return nil, tplErrorf("%s: Reference to undeclared resource %s.%s", at, root, attr())
			}
			node = root + "." + attr()
		}
		if node != "" && node != from && !seen[node] {
			seen[node] = true
			out = append(out, node)
		}
	}
	return out, nil
}

// bodyTraversals are all the references in a body, nested blocks
// included, depends_on too.
func bodyTraversals(body *hclsyntax.Body) []hcl.Traversal {
	var out []hcl.Traversal
	for _, attr := range body.Attributes {
		out = append(out, attr.Expr.Variables()...)
	}
	for _, b := range body.Blocks {
		out = append(out, bodyTraversals(b.Body)...)
	}
	return out
}

// dataValues is the data object: data.coder_workspace.<name> and
// data.coder_workspace_owner.<name> as the coder provider fills them.
func (t *tfTemplate) dataValues(ws tfWorkspace) cty.Value {
	byType := map[string]map[string]cty.Value{}
	for _, d := range t.data {
		var v cty.Value
		switch d.typ {
		case "coder_workspace":
			v = cty.ObjectVal(map[string]cty.Value{
				"id": cty.StringVal(ws.id), "name": cty.StringVal(ws.name),
				"start_count": cty.NumberIntVal(int64(ws.startCount)), "transition": cty.StringVal(ws.transition),
				"access_url": cty.StringVal(ws.accessURL), "access_port": cty.NumberIntVal(443),
				"template_id": cty.StringVal(ws.templateID), "template_name": cty.StringVal(ws.templateName),
				"template_version": cty.StringVal(ws.templateVersion),
				"owner":            cty.StringVal(ws.ownerName), "owner_id": cty.StringVal(ws.ownerID), "owner_email": cty.StringVal(ws.ownerEmail),
				"is_prebuild": cty.False, "prebuild_count": cty.NumberIntVal(0),
			})
		case "coder_workspace_owner":
			v = cty.ObjectVal(map[string]cty.Value{
				"id": cty.StringVal(ws.ownerID), "name": cty.StringVal(ws.ownerName), "full_name": cty.StringVal(ws.ownerFullName),
				"email": cty.StringVal(ws.ownerEmail), "groups": cty.ListValEmpty(cty.String),
				"ssh_public_key": cty.StringVal(""), "ssh_private_key": cty.StringVal(""),
				"session_token": cty.StringVal(""), "oidc_access_token": cty.StringVal(""),
				"login_type": cty.StringVal("password"), "rbac_roles": cty.ListValEmpty(cty.Map(cty.String)),
			})
		}
		if byType[d.typ] == nil {
			byType[d.typ] = map[string]cty.Value{}
		}
		byType[d.typ][d.name] = v
	}
	out := map[string]cty.Value{}
	for typ, byName := range byType {
		out[typ] = cty.ObjectVal(byName)
	}
	return cty.ObjectVal(out)
}

// planResource evaluates a resource's count and each instance's
// arguments, and returns the value later references see: an object, or a
// tuple of them with count.
func (t *tfTemplate) planResource(r *tfBlock, ctx *hcl.EvalContext, ws tfWorkspace, refs []string) (cty.Value, []*tfInstance, error) {
	count := -1
	if attr, ok := r.body.Attributes["count"]; ok {
		v, diags := attr.Expr.Value(ctx)
		if diags.HasErrors() {
			return cty.NilVal, nil, diagError(diags)
		}
		n, err := convert.Convert(v, cty.Number)
		if err != nil || n.IsNull() || !n.IsKnown() {
			return cty.NilVal, nil, tplErrorf("%s: count must be a whole number", r.addr())
		}
		bf := n.AsBigFloat()
		i, acc := bf.Int64()
		if !bf.IsInt() || acc != 0 || i < 0 {
			return cty.NilVal, nil, tplErrorf("%s: count must be a non-negative whole number, got %s", r.addr(), bf.String())
		}
		count = int(i)
	}
	var agentRefs []string
	for _, ref := range refs {
		if name, ok := strings.CutPrefix(ref, resCoderAgent+"."); ok {
			agentRefs = append(agentRefs, name)
		}
	}
	one := func(index int) (cty.Value, *tfInstance, error) {
		c := ctx.NewChild()
		if index >= 0 {
			c.Variables = map[string]cty.Value{"count": cty.ObjectVal(map[string]cty.Value{"index": cty.NumberIntVal(int64(index))})}
		}
		attrs, value, err := evalBody(r.body, c, r.addr(), true)
		if err != nil {
			return cty.NilVal, nil, err
		}
		if r.typ == resCoderAgent {
			id, ok := ws.agents[r.name]
			if !ok {
				return cty.NilVal, nil, tplErrorf("%s: no agent identity for this build", r.addr())
			}
			m := value.AsValueMap()
			if m == nil {
				m = map[string]cty.Value{}
			}
			m["id"], m["token"], m["init_script"] = cty.StringVal(id.id), cty.StringVal(id.token), cty.StringVal(id.initScript)
			value = cty.ObjectVal(m)
		} else {
			m := value.AsValueMap()
			if m == nil {
				m = map[string]cty.Value{}
			}
			m["id"] = cty.StringVal(kubeID(attrs))
			value = cty.ObjectVal(m)
		}
		return value, &tfInstance{typ: r.typ, name: r.name, index: index, attrs: attrs, agentRefs: agentRefs}, nil
	}
	if count < 0 {
		v, inst, err := one(-1)
		if err != nil {
			return cty.NilVal, nil, err
		}
		return v, []*tfInstance{inst}, nil
	}
	var values []cty.Value
	var instances []*tfInstance
	for i := range count {
		v, inst, err := one(i)
		if err != nil {
			return cty.NilVal, nil, err
		}
		values = append(values, v)
		instances = append(instances, inst)
	}
	if len(values) == 0 {
		return cty.EmptyTupleVal, nil, nil
	}
	return cty.TupleVal(values), instances, nil
}

// kubeID is the kubernetes provider's resource id: namespace/name.
func kubeID(attrs map[string]any) string {
	md, _ := singleBlock(attrs, "metadata")
	if md == nil {
		return ""
	}
	ns, name := "default", ""
	if v, ok := md["namespace"].(cty.Value); ok && v.Type() == cty.String && !v.IsNull() && v.AsString() != "" {
		ns = v.AsString()
	}
	if v, ok := md["name"].(cty.Value); ok && v.Type() == cty.String && !v.IsNull() {
		name = v.AsString()
	}
	return ns + "/" + name
}

func singleBlock(attrs map[string]any, name string) (map[string]any, bool) {
	list, ok := attrs[name].([]map[string]any)
	if !ok || len(list) != 1 {
		return nil, false
	}
	return list[0], true
}

// evalBody evaluates a block's arguments (cty.Value each) and nested
// blocks ([]map[string]any by type), and the value references to it see:
// arguments as they are, nested blocks as lists of objects. Dynamic
// blocks and provisioners are refused.
func evalBody(body *hclsyntax.Body, ctx *hcl.EvalContext, at string, top bool) (map[string]any, cty.Value, error) {
	attrs := map[string]any{}
	values := map[string]cty.Value{}
	for name, attr := range body.Attributes {
		if top && metaArguments[name] {
			continue
		}
		v, diags := attr.Expr.Value(ctx)
		if diags.HasErrors() {
			return nil, cty.NilVal, diagError(diags)
		}
		attrs[name], values[name] = v, v
	}
	blocks := map[string][]cty.Value{}
	for _, b := range body.Blocks {
		switch {
		case top && metaArguments[b.Type]:
			continue
		case b.Type == "dynamic" || b.Type == "provisioner" || b.Type == "connection":
			return nil, cty.NilVal, tplErrorf("%s: %q blocks are not supported by the coderapi double", at, b.Type)
		}
		nested, v, err := evalBody(b.Body, ctx, at+"."+b.Type, false)
		if err != nil {
			return nil, cty.NilVal, err
		}
		list, _ := attrs[b.Type].([]map[string]any)
		attrs[b.Type] = append(list, nested)
		blocks[b.Type] = append(blocks[b.Type], v)
	}
	for typ, list := range blocks {
		values[typ] = cty.TupleVal(list)
	}
	return attrs, cty.ObjectVal(values), nil
}

// Nested blocks of the kubernetes provider that are lists in the
// Kubernetes API, with the API's field name; every other nested block is
// a single object under the camel-cased name.
var listBlocks = map[string]string{
	"container": "containers", "init_container": "initContainers", "toleration": "tolerations",
	"env": "env", "env_from": "envFrom", "volume_mount": "volumeMounts", "volume": "volumes",
	"port": "ports", "match_expressions": "matchExpressions", "image_pull_secrets": "imagePullSecrets",
	"host_aliases": "hostAliases", "topology_spread_constraint": "topologySpreadConstraints",
	"node_selector_term": "nodeSelectorTerms",
	"preferred_during_scheduling_ignored_during_execution": "preferredDuringSchedulingIgnoredDuringExecution",
	"required_during_scheduling_ignored_during_execution":  "requiredDuringSchedulingIgnoredDuringExecution",
}

// Arguments of the provider's own, not of the object.
var providerOnly = map[string]map[string]bool{
	resPVC: {"wait_until_bound": true}, resPVCv1: {"wait_until_bound": true},
	resDeploy: {"wait_for_rollout": true}, resDeployV1: {"wait_for_rollout": true},
}

// kubeObject turns an instance's arguments into the Kubernetes object's
// JSON: snake_case names camel-cased, list blocks pluralised, single
// blocks unwrapped, map and object values kept as written.
func kubeObject(inst *tfInstance, apiVersion, kind string) ([]byte, error) {
	obj := map[string]any{"apiVersion": apiVersion, "kind": kind}
	for name, v := range inst.attrs {
		if providerOnly[inst.typ][name] {
			continue
		}
		key, converted, err := kubeField(inst.addr(), name, v)
		if err != nil {
			return nil, err
		}
		obj[key] = converted
	}
	return json.Marshal(obj)
}

// Arguments the provider's schema types as strings where the API has an
// integer (deployment replicas, security context IDs), as Coder's own
// starter template writes run_as_user = "1000"; Terraform converts them.
var numericStrings = map[string]bool{"replicas": true, "run_as_user": true, "run_as_group": true, "fs_group": true}

func kubeField(at, name string, v any) (string, any, error) {
	switch v := v.(type) {
	case cty.Value:
		if numericStrings[name] && v.Type() == cty.String && !v.IsNull() {
			n, err := convert.Convert(v, cty.Number)
			if err != nil {
				return "", nil, tplErrorf("%s.%s: %q is not a number", at, name, v.AsString())
			}
			v = n
		}
		raw, err := ctyjson.Marshal(v, v.Type())
		if err != nil {
			return "", nil, tplErrorf("%s.%s: %v", at, name, err)
		}
		var out any
		if err := json.Unmarshal(raw, &out); err != nil {
			return "", nil, tplErrorf("%s.%s: %v", at, name, err)
		}
		return camel(name), out, nil
	case []map[string]any:
		convert := func(m map[string]any) (map[string]any, error) {
			out := map[string]any{}
			for k, x := range m {
				key, c, err := kubeField(at+"."+name, k, x)
				if err != nil {
					return nil, err
				}
				out[key] = c
			}
			return out, nil
		}
		if plural, ok := listBlocks[name]; ok {
			var list []any
			for _, m := range v {
				c, err := convert(m)
				if err != nil {
					return "", nil, err
				}
				list = append(list, c)
			}
			return plural, list, nil
		}
		if len(v) != 1 {
			return "", nil, tplErrorf("%s: block %q may appear only once (the coderapi double reads it as a single object)", at, name)
		}
		c, err := convert(v[0])
		return camel(name), c, err
	}
	return "", nil, tplErrorf("%s.%s: unexpected value", at, name)
}

// camel turns the provider's snake_case names into the API's camelCase.
func camel(s string) string {
	parts := strings.Split(s, "_")
	for i := 1; i < len(parts); i++ {
		if parts[i] != "" {
			parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
		}
	}
	return strings.Join(parts, "")
}

// boolArg reads a provider-only boolean argument, def when absent.
func boolArg(inst *tfInstance, name string, def bool) bool {
	v, ok := inst.attrs[name].(cty.Value)
	if !ok || v.IsNull() {
		return def
	}
	b, err := convert.Convert(v, cty.Bool)
	if err != nil {
		return def
	}
	return b.True()
}

// stringArg reads a string argument, "" when absent.
func stringArg(attrs map[string]any, name string) string {
	v, ok := attrs[name].(cty.Value)
	if !ok || v.IsNull() {
		return ""
	}
	s, err := convert.Convert(v, cty.String)
	if err != nil {
		return ""
	}
	return s.AsString()
}
