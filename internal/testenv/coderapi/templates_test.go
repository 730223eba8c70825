package coderapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/coderctl/coderctl/internal/testenv/kubeground"
	"github.com/coderctl/coderctl/internal/wstemplate"
)

// world is a double on the real control plane with one provisioner pod
// connected as a daemon under a key with the given tags.
type world struct {
	ctx   context.Context
	g     *kubeground.Ground
	kube  kubernetes.Interface
	ns    string
	s     *Server
	token string
}

func suffix() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func newWorld(t *testing.T, keyTags map[string]string) *world {
	t.Helper()
	g := kubeground.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	kube := g.Client()
	if err := g.AddNode(ctx, kubeground.NodeSpec{Name: "coderapi-prov-" + suffix()}); err != nil {
		t.Fatal(err)
	}
	ns := createNamespace(ctx, t, kube, "coderapi-ws")
	s := Require(t, Options{Licensed: true, Kube: kube, Namespace: ns})
	var key createProvisionerKeyResponse
	expect(t, s, "POST", "/api/v2/organizations/default/provisionerkeys", s.Token(),
		createProvisionerKeyRequest{Name: "eks", Tags: keyTags}, http.StatusCreated, &key)
	createSecret(ctx, t, kube, ns, "coder-provisioner-key", key.Key)
	runProvisionerPod(ctx, t, kube, ns, "provisioner-0", "coder-provisioner-key")
	return &world{ctx: ctx, g: g, kube: kube, ns: ns, s: s, token: s.Token()}
}

// upload posts a tar archive and returns the file ID; wantStatus 0
// takes either 201 (new) or 200 (the same bytes again).
func upload(t *testing.T, s *Server, token string, archive []byte, wantStatus int) string {
	t.Helper()
	req, err := http.NewRequest("POST", s.URL()+"/api/v2/files", bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(SessionTokenHeader, token)
	req.Header.Set("Content-Type", "application/x-tar")
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus && (wantStatus != 0 || (resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated)) {
		t.Fatalf("POST /api/v2/files = %d %s, want %d", resp.StatusCode, raw, wantStatus)
	}
	var out uploadResponse
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out.ID
}

func tarOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	m := map[string][]byte{}
	for k, v := range files {
		m[k] = []byte(v)
	}
	archive, err := wstemplate.Tar(m)
	if err != nil {
		t.Fatal(err)
	}
	return archive
}

func shippedParams(ns string) wstemplate.Params {
	return wstemplate.Params{
		Namespace: ns, NodeLabelKey: "coder/node-type", NodeLabelValue: "workspace",
		TaintKey: "coder/node-type", TaintValue: "workspace", TaintEffect: "NoSchedule",
		CPURequest: "500m", MemoryRequest: "1Gi", CPULimit: "2", MemoryLimit: "4Gi", HomeSize: "10Gi",
		Image: wstemplate.DefaultImage,
	}
}

func shippedMainTF(t *testing.T, ns string) string {
	t.Helper()
	files, err := wstemplate.Render(shippedParams(ns))
	if err != nil {
		t.Fatal(err)
	}
	return string(files[wstemplate.MainFile])
}

// pushVersion uploads main.tf and creates a template version from it.
func pushVersion(t *testing.T, w *world, mainTF string, req createTemplateVersionRequest) templateVersionJSON {
	t.Helper()
	req.FileID = upload(t, w.s, w.token, tarOf(t, map[string]string{"main.tf": mainTF}), 0)
	req.StorageMethod, req.Provisioner = "file", "terraform"
	var v templateVersionJSON
	expect(t, w.s, "POST", "/api/v2/organizations/"+w.s.OrganizationID()+"/templateversions", w.token, req, http.StatusCreated, &v)
	return v
}

// pollVersion reads the version until its job is done, returning every
// status seen on the way. The bound is in polls, not time.
func pollVersion(t *testing.T, w *world, id string) (templateVersionJSON, []string) {
	t.Helper()
	var seen []string
	for range 50 {
		var v templateVersionJSON
		expect(t, w.s, "GET", "/api/v2/templateversions/"+id, w.token, nil, http.StatusOK, &v)
		if len(seen) == 0 || seen[len(seen)-1] != v.Job.Status {
			seen = append(seen, v.Job.Status)
		}
		if v.Job.Status == statusSucceeded || v.Job.Status == statusFailed {
			return v, seen
		}
	}
	t.Fatalf("version %s: job never finished; statuses %v", id, seen)
	return templateVersionJSON{}, nil
}

func TestFilesUploadAndDownload(t *testing.T) {
	s := Require(t, Options{})
	archive := tarOf(t, map[string]string{"main.tf": "# empty\n"})
	id := upload(t, s, s.Token(), archive, http.StatusCreated)
	if again := upload(t, s, s.Token(), archive, http.StatusOK); again != id {
		t.Errorf("same bytes uploaded again got id %s, want %s", again, id)
	}
	if other := upload(t, s, s.MemberToken(), archive, http.StatusCreated); other == id {
		t.Error("another user's upload of the same bytes shares the file")
	}
	req, _ := http.NewRequest("GET", s.URL()+"/api/v2/files/"+id, nil)
	req.Header.Set(SessionTokenHeader, s.Token())
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, archive) || resp.Header.Get("Content-Type") != "application/x-tar" {
		t.Errorf("GET file = %d %s, want the archive back as application/x-tar", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	expect(t, s, "GET", "/api/v2/files/"+newID(), s.Token(), nil, http.StatusNotFound, nil)
	expect(t, s, "GET", "/api/v2/files/not-a-uuid", s.Token(), nil, http.StatusBadRequest, nil)
	status, _ := call(t, s, "POST", "/api/v2/files", s.Token(), map[string]string{"not": "a tar"}) // JSON content type
	if status != http.StatusBadRequest {
		t.Errorf("upload without the tar content type = %d, want 400", status)
	}
	expect(t, s, "POST", "/api/v2/files", "", nil, http.StatusUnauthorized, nil)
}

// TestTemplateImports: the import job of each template goes pending →
// running → its outcome, read with hcl/v2; templates the double cannot
// read fail with a message naming what it could not read.
func TestTemplateImports(t *testing.T) {
	w := newWorld(t, nil)
	shipped := shippedMainTF(t, w.ns)
	for _, tc := range []struct {
		name      string
		mainTF    string
		values    []variableValue
		want      string
		errHas    string
		errorCode string
	}{
		{name: "shipped template", mainTF: shipped, want: statusSucceeded},
		{name: "not HCL", mainTF: "resource \"coder_agent\" {", want: statusFailed, errHas: "main.tf"},
		{name: "unsupported resource", mainTF: shipped + "\nresource \"aws_instance\" \"x\" {}\n", want: statusFailed, errHas: `resource type "aws_instance" is not supported`},
		{name: "unsupported data source", mainTF: shipped + "\ndata \"coder_parameter\" \"cpu\" {\n  name = \"cpu\"\n}\n", want: statusFailed, errHas: `data source type "coder_parameter" is not supported`},
		{name: "undeclared reference", mainTF: strings.Replace(shipped, "coder_agent.main.token", "coder_agent.dev.token", 1), want: statusFailed, errHas: "Reference to undeclared resource coder_agent.dev"},
		{name: "field the API does not have", mainTF: strings.Replace(shipped, "replicas = 1", "replicas = 1\n    replica_count = 1", 1), want: statusFailed, errHas: `unknown field "replicaCount"`},
		{name: "module", mainTF: shipped + "\nmodule \"m\" {\n  source = \"./m\"\n}\n", want: statusFailed, errHas: `"module" blocks are not supported`},
		{name: "variable without a value", mainTF: shipped + "\nvariable \"region\" {\n  type = string\n}\n", want: statusFailed, errHas: "region", errorCode: errorCodeRequiredVariables},
		{name: "variable given", mainTF: shipped + "\nvariable \"region\" {\n  type = string\n}\n", values: []variableValue{{Name: "region", Value: "eu-west-1"}}, want: statusSucceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			created := pushVersion(t, w, tc.mainTF, createTemplateVersionRequest{UserVariableValues: tc.values})
			if created.Job.Status != statusPending || created.Job.Type != jobImport || created.Job.Tags["scope"] != "organization" {
				t.Errorf("created version job = %+v, want a pending import scoped to the organization", created.Job)
			}
			if created.MatchedProvisioners == nil || created.MatchedProvisioners.Count != 1 {
				t.Errorf("matched_provisioners = %+v, want the one daemon", created.MatchedProvisioners)
			}
			v, seen := pollVersion(t, w, created.ID)
			if strings.Join(seen, ",") != "pending,running,"+tc.want && strings.Join(seen, ",") != "running,"+tc.want {
				t.Errorf("statuses %v, want pending, running, %s", seen, tc.want)
			}
			if v.Job.Status != tc.want || !strings.Contains(v.Job.Error, tc.errHas) || v.Job.ErrorCode != tc.errorCode {
				t.Errorf("job = %s %q (code %q), want %s with error containing %q (code %q)", v.Job.Status, v.Job.Error, v.Job.ErrorCode, tc.want, tc.errHas, tc.errorCode)
			}
			if v.Job.WorkerName != "provisioner-0" || v.Job.StartedAt == nil || v.Job.CompletedAt == nil {
				t.Errorf("job worker %q started %v completed %v, want provisioner-0 and both times", v.Job.WorkerName, v.Job.StartedAt, v.Job.CompletedAt)
			}
			var logs []provisionerJobLog
			expect(t, w.s, "GET", "/api/v2/templateversions/"+created.ID+"/logs", w.token, nil, http.StatusOK, &logs)
			if len(logs) < 2 || logs[0].Stage != "Setting up" || logs[len(logs)-1].Stage != "Cleaning Up" {
				t.Errorf("logs %+v, want Setting up ... Cleaning Up", logs)
			}
			if tc.want == statusFailed && !strings.Contains(logsText(logs), tc.errHas) {
				t.Errorf("logs do not carry the error %q", tc.errHas)
			}
		})
	}
}

func logsText(logs []provisionerJobLog) string {
	var b strings.Builder
	for _, l := range logs {
		b.WriteString(l.Output + "\n")
	}
	return b.String()
}

// TestImportWaitsForAMatchingDaemon: the only daemon's key is tagged, so
// an untagged import stays pending (coderd's tagset rule) while one
// carrying the key's tags runs.
func TestImportWaitsForAMatchingDaemon(t *testing.T) {
	w := newWorld(t, map[string]string{"pool": "eks"})
	untagged := pushVersion(t, w, shippedMainTF(t, w.ns), createTemplateVersionRequest{})
	for range 5 {
		var v templateVersionJSON
		expect(t, w.s, "GET", "/api/v2/templateversions/"+untagged.ID, w.token, nil, http.StatusOK, &v)
		if v.Job.Status != statusPending || v.Job.QueuePosition != 1 || v.Job.QueueSize != 1 {
			t.Fatalf("untagged import with only a tagged daemon: %s (queue %d/%d), want pending 1/1", v.Job.Status, v.Job.QueuePosition, v.Job.QueueSize)
		}
		if v.MatchedProvisioners.Count != 0 {
			t.Errorf("matched_provisioners = %+v, want none", v.MatchedProvisioners)
		}
	}
	tagged := pushVersion(t, w, shippedMainTF(t, w.ns), createTemplateVersionRequest{ProvisionerTags: map[string]string{"pool": "eks"}})
	if v, _ := pollVersion(t, w, tagged.ID); v.Job.Status != statusSucceeded {
		t.Errorf("tagged import: %s %s", v.Job.Status, v.Job.Error)
	}
	var v templateVersionJSON
	expect(t, w.s, "GET", "/api/v2/templateversions/"+untagged.ID, w.token, nil, http.StatusOK, &v)
	if v.Job.Status != statusPending {
		t.Errorf("untagged import after the tagged one ran: %s, want still pending", v.Job.Status)
	}
}

// TestNoDaemonNoImport: unlicensed, no external daemon connects, so the
// import stays pending.
func TestNoDaemonNoImport(t *testing.T) {
	s := Require(t, Options{})
	id := upload(t, s, s.Token(), tarOf(t, map[string]string{"main.tf": shippedMainTF(t, "coder")}), http.StatusCreated)
	var v templateVersionJSON
	expect(t, s, "POST", "/api/v2/organizations/default/templateversions", s.Token(),
		createTemplateVersionRequest{FileID: id, StorageMethod: "file", Provisioner: "terraform"}, http.StatusCreated, &v)
	for range 3 {
		expect(t, s, "GET", "/api/v2/templateversions/"+v.ID, s.Token(), nil, http.StatusOK, &v)
		if v.Job.Status != statusPending {
			t.Fatalf("job %s without any daemon, want pending", v.Job.Status)
		}
	}
}

func TestTemplateVersionRefusals(t *testing.T) {
	s := Require(t, Options{})
	id := upload(t, s, s.Token(), tarOf(t, map[string]string{"main.tf": "# x\n"}), http.StatusCreated)
	path := "/api/v2/organizations/default/templateversions"
	for _, tc := range []struct {
		name    string
		token   string
		req     createTemplateVersionRequest
		status  int
		message string
	}{
		{"no storage method", s.Token(), createTemplateVersionRequest{FileID: id, Provisioner: "terraform"}, 400, "Validation failed."},
		{"unknown provisioner", s.Token(), createTemplateVersionRequest{FileID: id, StorageMethod: "file", Provisioner: "pulumi"}, 400, "Validation failed."},
		{"no file", s.Token(), createTemplateVersionRequest{StorageMethod: "file", Provisioner: "terraform"}, 400, "Validation failed."},
		{"bad name", s.Token(), createTemplateVersionRequest{Name: "v 1", FileID: id, StorageMethod: "file", Provisioner: "terraform"}, 400, "Validation failed."},
		{"unknown file", s.Token(), createTemplateVersionRequest{FileID: newID(), StorageMethod: "file", Provisioner: "terraform"}, 404, "File not found."},
		{"unknown template", s.Token(), createTemplateVersionRequest{TemplateID: newID(), FileID: id, StorageMethod: "file", Provisioner: "terraform"}, 404, "Template does not exist."},
		{"member", s.MemberToken(), createTemplateVersionRequest{FileID: id, StorageMethod: "file", Provisioner: "terraform"}, 403, forbiddenMessage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got response
			expect(t, s, "POST", path, tc.token, tc.req, tc.status, &got)
			if got.Message != tc.message {
				t.Errorf("message %q, want %q", got.Message, tc.message)
			}
		})
	}
	expect(t, s, "GET", "/api/v2/templateversions/"+newID(), s.Token(), nil, http.StatusNotFound, nil)
	expect(t, s, "GET", "/api/v2/templateversions/nope", s.Token(), nil, http.StatusBadRequest, nil)
}

// TestTemplatesCreatePromote: a template from an imported version, found
// by name and ID; a second version is promoted only once its import
// succeeded; a failed one never.
func TestTemplatesCreatePromote(t *testing.T) {
	w := newWorld(t, nil)
	org := "/api/v2/organizations/" + w.s.OrganizationID()
	expect(t, w.s, "GET", org+"/templates/kubernetes-eks", w.token, nil, http.StatusNotFound, nil)

	v1 := pushVersion(t, w, shippedMainTF(t, w.ns), createTemplateVersionRequest{Name: "v1"})
	var tpl templateJSON
	expect(t, w.s, "POST", org+"/templates", w.token, createTemplateRequest{Name: "kubernetes-eks", VersionID: v1.ID}, http.StatusCreated, &tpl)
	if tpl.ActiveVersionID != v1.ID || tpl.Name != "kubernetes-eks" || tpl.OrganizationID != w.s.OrganizationID() {
		t.Errorf("created template %+v", tpl)
	}
	var msg response
	expect(t, w.s, "POST", org+"/templates", w.token, createTemplateRequest{Name: "kubernetes-eks", VersionID: v1.ID}, http.StatusConflict, &msg)
	if msg.Message != `Template with name "kubernetes-eks" already exists.` {
		t.Errorf("duplicate: %q", msg.Message)
	}
	expect(t, w.s, "POST", org+"/templates", w.token, createTemplateRequest{Name: "other", VersionID: v1.ID}, http.StatusBadRequest, nil)
	expect(t, w.s, "POST", org+"/templates", w.token, createTemplateRequest{Name: "other", VersionID: newID()}, http.StatusNotFound, nil)
	expect(t, w.s, "POST", org+"/templates", w.s.MemberToken(), createTemplateRequest{Name: "other", VersionID: v1.ID}, http.StatusForbidden, nil)

	var byName, byID templateJSON
	expect(t, w.s, "GET", org+"/templates/kubernetes-eks", w.token, nil, http.StatusOK, &byName)
	expect(t, w.s, "GET", "/api/v2/templates/"+tpl.ID, w.token, nil, http.StatusOK, &byID)
	if byName.ID != tpl.ID || byID.ActiveVersionID != v1.ID {
		t.Errorf("by name %s, by id active %s", byName.ID, byID.ActiveVersionID)
	}

	v2 := pushVersion(t, w, shippedMainTF(t, w.ns)+"\n# v2\n", createTemplateVersionRequest{Name: "v2", TemplateID: tpl.ID})
	if v2.TemplateID == nil || *v2.TemplateID != tpl.ID {
		t.Errorf("v2 template_id %v, want %s", v2.TemplateID, tpl.ID)
	}
	expect(t, w.s, "PATCH", "/api/v2/templates/"+tpl.ID+"/versions", w.token, updateActiveTemplateVersion{ID: v2.ID}, http.StatusForbidden, &msg)
	if msg.Message != "Only versions that have been built successfully can be promoted." {
		t.Errorf("promote while importing: %+v", msg)
	}
	pollVersion(t, w, v2.ID)
	expect(t, w.s, "PATCH", "/api/v2/templates/"+tpl.ID+"/versions", w.token, updateActiveTemplateVersion{ID: v2.ID}, http.StatusOK, &msg)
	expect(t, w.s, "GET", "/api/v2/templates/"+tpl.ID, w.token, nil, http.StatusOK, &byID)
	if byID.ActiveVersionID != v2.ID {
		t.Errorf("active version %s after promotion, want %s", byID.ActiveVersionID, v2.ID)
	}
	expect(t, w.s, "POST", org+"/templateversions", w.token, createTemplateVersionRequest{}, http.StatusBadRequest, nil)
	dup := pushVersion(t, w, shippedMainTF(t, w.ns)+"\n# v3\n", createTemplateVersionRequest{Name: "v3", TemplateID: tpl.ID})
	var conflict response
	expect(t, w.s, "POST", org+"/templateversions", w.token, createTemplateVersionRequest{
		Name: "v3", TemplateID: tpl.ID, FileID: dup.Job.FileID, StorageMethod: "file", Provisioner: "terraform",
	}, http.StatusConflict, &conflict)
	if conflict.Message != `A template version with name "v3" already exists for this template.` {
		t.Errorf("duplicate version name: %q", conflict.Message)
	}

	broken := pushVersion(t, w, "resource \"aws_instance\" \"x\" {}\n", createTemplateVersionRequest{TemplateID: tpl.ID})
	if v, _ := pollVersion(t, w, broken.ID); v.Job.Status != statusFailed {
		t.Fatalf("broken version: %s", v.Job.Status)
	}
	expect(t, w.s, "PATCH", "/api/v2/templates/"+tpl.ID+"/versions", w.token, updateActiveTemplateVersion{ID: broken.ID}, http.StatusForbidden, &msg)
	if msg.Detail != "Attempted to promote a version with a failed build" {
		t.Errorf("promote failed version: %+v", msg)
	}
	other := pushVersion(t, w, shippedMainTF(t, w.ns)+"\n# unattached\n", createTemplateVersionRequest{})
	pollVersion(t, w, other.ID)
	expect(t, w.s, "PATCH", "/api/v2/templates/"+tpl.ID+"/versions", w.token, updateActiveTemplateVersion{ID: other.ID}, http.StatusBadRequest, nil)
}
