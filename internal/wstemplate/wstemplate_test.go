package wstemplate

import (
	"archive/tar"
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

func testParams() Params {
	return Params{
		Namespace:      "coder",
		NodeLabelKey:   "coder/node-type",
		NodeLabelValue: "workspace",
		TaintKey:       "coder/node-type",
		TaintValue:     "workspace",
		TaintEffect:    "NoSchedule",
		CPURequest:     "500m",
		MemoryRequest:  "1Gi",
		CPULimit:       "2",
		MemoryLimit:    "4Gi",
		HomeSize:       "10Gi",
		Image:          DefaultImage,
	}
}

// parsed renders p and parses main.tf with hclsyntax.
func parsed(t *testing.T, p Params) *hclsyntax.Body {
	t.Helper()
	files, err := Render(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || files[MainFile] == nil {
		t.Fatalf("files = %v, want only %s", keys(files), MainFile)
	}
	f, diags := hclsyntax.ParseConfig(files[MainFile], MainFile, hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("%s does not parse: %s\n%s", MainFile, diags.Error(), files[MainFile])
	}
	return f.Body.(*hclsyntax.Body)
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// block finds the one nested block of the type (and labels) in body.
func block(t *testing.T, body *hclsyntax.Body, typ string, labels ...string) *hclsyntax.Block {
	t.Helper()
	var found []*hclsyntax.Block
	for _, b := range body.Blocks {
		if b.Type == typ && strings.Join(b.Labels, ".") == strings.Join(labels, ".") {
			found = append(found, b)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d %s %v blocks, want 1", len(found), typ, labels)
	}
	return found[0]
}

// evalContext has the variables' defaults and the locals that need no
// workspace data.
func evalContext(t *testing.T, body *hclsyntax.Body) *hcl.EvalContext {
	t.Helper()
	vars := map[string]cty.Value{}
	for _, b := range body.Blocks {
		if b.Type == "variable" {
			v, diags := b.Body.Attributes["default"].Expr.Value(nil)
			if diags.HasErrors() {
				t.Fatal(diags.Error())
			}
			vars[b.Labels[0]] = v
		}
	}
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{"var": cty.ObjectVal(vars)}}
	locals := map[string]cty.Value{}
	for name, attr := range block(t, body, "locals").Body.Attributes {
		if v, diags := attr.Expr.Value(ctx); !diags.HasErrors() {
			locals[name] = v
		}
	}
	ctx.Variables["local"] = cty.ObjectVal(locals)
	return ctx
}

func value(t *testing.T, ctx *hcl.EvalContext, body *hclsyntax.Body, name string) cty.Value {
	t.Helper()
	attr := body.Attributes[name]
	if attr == nil {
		t.Fatalf("no attribute %s", name)
	}
	v, diags := attr.Expr.Value(ctx)
	if diags.HasErrors() {
		t.Fatalf("%s: %s", name, diags.Error())
	}
	return v
}

func TestRenderedTemplatePlacesAndSizesWorkspaces(t *testing.T) {
	p := testParams()
	p.Namespace = "coder-ws"
	p.Image = "example.com/dev:1.2"
	body := parsed(t, p)
	ctx := evalContext(t, body)

	providers := value(t, ctx, block(t, block(t, body, "terraform").Body, "required_providers").Body, "coder")
	if got := providers.GetAttr("source").AsString(); got != "coder/coder" {
		t.Errorf("coder provider source = %s", got)
	}
	block(t, body, "resource", "coder_agent", "main")
	block(t, body, "data", "coder_workspace", "me")

	pvc := block(t, body, "resource", "kubernetes_persistent_volume_claim_v1", "home").Body
	if got := value(t, ctx, pvc, "wait_until_bound"); got.True() {
		t.Error("claim waits until bound; a WaitForFirstConsumer class never binds before the pod exists")
	}
	pvcSpec := block(t, pvc, "spec").Body
	if _, ok := pvcSpec.Attributes["storage_class_name"]; ok {
		t.Error("claim names a storage class; it must use the cluster's default")
	}
	requests := value(t, ctx, block(t, pvcSpec, "resources").Body, "requests")
	if got := requests.GetAttr("storage").AsString(); got != "10Gi" {
		t.Errorf("home size = %s, want 10Gi", got)
	}
	if got := value(t, ctx, block(t, pvc, "metadata").Body, "namespace").AsString(); got != "coder-ws" {
		t.Errorf("claim namespace = %s, want coder-ws", got)
	}

	dep := block(t, body, "resource", "kubernetes_deployment_v1", "main").Body
	count := dep.Attributes["count"]
	if count == nil {
		t.Fatal("deployment has no count")
	}
	if got := string(count.Expr.Range().SliceBytes(mustRender(t, p))); got != "data.coder_workspace.me.start_count" {
		t.Errorf("count = %s, want data.coder_workspace.me.start_count", got)
	}
	if got := value(t, ctx, block(t, dep, "metadata").Body, "namespace").AsString(); got != "coder-ws" {
		t.Errorf("deployment namespace = %s, want coder-ws", got)
	}
	tmpl := block(t, block(t, dep, "spec").Body, "template").Body
	annotations := value(t, ctx, block(t, tmpl, "metadata").Body, "annotations")
	if got := annotations.GetAttr("cluster-autoscaler.kubernetes.io/safe-to-evict").AsString(); got != "false" {
		t.Errorf("safe-to-evict = %s, want false", got)
	}
	podSpec := block(t, tmpl, "spec").Body
	selector := value(t, ctx, podSpec, "node_selector").AsValueMap()
	if len(selector) != 1 || selector["coder/node-type"].AsString() != "workspace" {
		t.Errorf("node_selector = %v, want coder/node-type=workspace", selector)
	}
	tol := block(t, podSpec, "toleration").Body
	for attr, want := range map[string]string{"key": "coder/node-type", "operator": "Equal", "value": "workspace", "effect": "NoSchedule"} {
		if got := value(t, ctx, tol, attr).AsString(); got != want {
			t.Errorf("toleration %s = %s, want %s", attr, got, want)
		}
	}
	container := block(t, podSpec, "container").Body
	if got := value(t, ctx, container, "image").AsString(); got != "example.com/dev:1.2" {
		t.Errorf("image = %s", got)
	}
	res := block(t, container, "resources").Body
	for attr, want := range map[string]map[string]string{
		"requests": {"cpu": "500m", "memory": "1Gi"},
		"limits":   {"cpu": "2", "memory": "4Gi"},
	} {
		v := value(t, ctx, res, attr)
		for k, w := range want {
			if got := v.GetAttr(k).AsString(); got != w {
				t.Errorf("%s.%s = %s, want %s", attr, k, got, w)
			}
		}
	}
	env := block(t, container, "env").Body
	if got := value(t, ctx, env, "name").AsString(); got != "CODER_AGENT_TOKEN" {
		t.Errorf("env name = %s", got)
	}
	if got := string(env.Attributes["value"].Expr.Range().SliceBytes(mustRender(t, p))); got != "coder_agent.main.token" {
		t.Errorf("CODER_AGENT_TOKEN = %s, want coder_agent.main.token", got)
	}
	if got := value(t, ctx, block(t, container, "volume_mount").Body, "mount_path").AsString(); got != "/home/coder" {
		t.Errorf("home mount = %s", got)
	}
}

func mustRender(t *testing.T, p Params) []byte {
	t.Helper()
	files, err := Render(p)
	if err != nil {
		t.Fatal(err)
	}
	return files[MainFile]
}

func TestValidateRefusesBadParams(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Params)
		want   string
	}{
		{"empty namespace", func(p *Params) { p.Namespace = "" }, "Namespace is empty"},
		{"namespace not a DNS label", func(p *Params) { p.Namespace = "Coder_NS" }, `Namespace "Coder_NS"`},
		{"empty label key", func(p *Params) { p.NodeLabelKey = "" }, "NodeLabelKey is empty"},
		{"bad label value", func(p *Params) { p.NodeLabelValue = "work space" }, `NodeLabelValue "work space"`},
		{"empty taint key", func(p *Params) { p.TaintKey = "" }, "TaintKey is empty"},
		{"unknown effect", func(p *Params) { p.TaintEffect = "NoSchedul" }, `TaintEffect "NoSchedul"`},
		{"not a quantity", func(p *Params) { p.CPURequest = "two" }, `CPURequest "two": not a Kubernetes quantity`},
		{"zero limit", func(p *Params) { p.MemoryLimit = "0" }, `MemoryLimit "0": must be more than zero`},
		{"request over limit", func(p *Params) { p.CPURequest = "4" }, "CPURequest 4 is more than CPULimit 2"},
		{"empty home", func(p *Params) { p.HomeSize = "" }, "HomeSize is empty"},
		{"empty image", func(p *Params) { p.Image = "" }, "Image is empty"},
		{"image with a quote", func(p *Params) { p.Image = `a"b` }, "must not contain spaces"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testParams()
			tc.change(&p)
			files, err := Render(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Render error = %v, want one containing %q", err, tc.want)
			}
			if files != nil {
				t.Errorf("files rendered despite the error")
			}
		})
	}
	if err := testParams().Validate(); err != nil {
		t.Errorf("good params: %v", err)
	}
}

func TestTarIsDeterministic(t *testing.T) {
	a, err := Render(testParams())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Render(testParams())
	ta, err := Tar(a)
	if err != nil {
		t.Fatal(err)
	}
	tb, _ := Tar(b)
	if !bytes.Equal(ta, tb) {
		t.Error("the same params packed to different bytes")
	}
	if Hash(a) != Hash(b) || len(Hash(a)) != 64 {
		t.Errorf("hashes %s / %s, want the same sha256", Hash(a), Hash(b))
	}
	other := testParams()
	other.CPULimit = "3"
	c, _ := Render(other)
	if Hash(c) == Hash(a) {
		t.Error("different sizing, same hash")
	}

	multi := map[string][]byte{"z.tf": []byte("z"), "a.tf": []byte("a"), "dir/m.tf": []byte("m")}
	first, err := Tar(multi)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		again, _ := Tar(map[string][]byte{"dir/m.tf": []byte("m"), "a.tf": []byte("a"), "z.tf": []byte("z")})
		if !bytes.Equal(first, again) {
			t.Fatal("map order changed the archive")
		}
	}
	tr := tar.NewReader(bytes.NewReader(first))
	var names []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !hdr.ModTime.Equal(fileTime) || hdr.Mode != 0o644 || hdr.Typeflag != tar.TypeReg {
			t.Errorf("%s: mtime %s mode %o type %c", hdr.Name, hdr.ModTime, hdr.Mode, hdr.Typeflag)
		}
		names = append(names, hdr.Name)
	}
	if strings.Join(names, ",") != "a.tf,dir/m.tf,z.tf" {
		t.Errorf("entries %v, want sorted", names)
	}

	for _, bad := range []string{"/etc/x.tf", "../x.tf", "a/../../x.tf", ""} {
		if _, err := Tar(map[string][]byte{bad: nil}); err == nil {
			t.Errorf("Tar accepted name %q", bad)
		}
		if Hash(map[string][]byte{bad: nil}) != "" {
			t.Errorf("Hash of refused name %q is not empty", bad)
		}
	}
	if _, err := Tar(nil); err == nil {
		t.Error("Tar packed no files")
	}
}

// TestHCLStringRoundTrips: whatever hclString quotes reads back as the
// same string, template sequences included.
func TestHCLStringRoundTrips(t *testing.T) {
	for _, s := range []string{"plain", `q"uote`, `back\slash`, "${var.x}", "%{ if true }", "$${", "tab\tnl\nctl\x01", "ünï", "$", "%"} {
		quoted := hclString(s)
		expr, diags := hclsyntax.ParseExpression([]byte(quoted), "x", hcl.InitialPos)
		if diags.HasErrors() {
			t.Errorf("%q quoted as %s does not parse: %s", s, quoted, diags.Error())
			continue
		}
		v, diags := expr.Value(nil)
		if diags.HasErrors() {
			t.Errorf("%q quoted as %s: %s", s, quoted, diags.Error())
			continue
		}
		if v.AsString() != s {
			t.Errorf("%q quoted as %s reads back as %q", s, quoted, v.AsString())
		}
	}
}
