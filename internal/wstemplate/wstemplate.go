// Package wstemplate renders the Coder workspace template coderctl ships:
// Terraform for the coder/coder and hashicorp/kubernetes providers that
// runs each workspace as a one-replica Deployment on the workspace node
// group (its label as node selector, a toleration for its taint), with
// requests and limits from the sizing, the cluster-autoscaler's
// not-safe-to-evict annotation, and a home volume claimed from the
// cluster's default StorageClass.
//
// The layout follows Coder's own starter template
// (examples/templates/kubernetes in coder/coder), with the placement and
// sizing filled in from Params instead of workspace parameters.
//
// Render gives the template's files; Tar packs them the way Coder's file
// upload takes them (application/x-tar), byte for byte the same for the
// same files, so Hash identifies a template by content and a push can be
// skipped when the active version already carries it.
package wstemplate

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"text/template"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// MainFile is the name of the Terraform file in a rendered template.
const MainFile = "main.tf"

// DefaultImage is Coder's base workspace image, the one its starter
// Kubernetes template uses.
const DefaultImage = "codercom/enterprise-base:ubuntu"

//go:embed main.tf.tmpl
var mainTF string

var mainTemplate = template.Must(template.New(MainFile).
	Funcs(template.FuncMap{"hcl": hclString}).
	Option("missingkey=error").
	Parse(mainTF))

// Params place and size the workspaces. Every field is required.
type Params struct {
	// Namespace the workspace pods and claims live in: the namespace
	// where Coder's chart grants coderd its workspace permissions (its
	// release namespace, unless coder.workspaceNamespaces says more).
	Namespace string
	// NodeLabelKey and NodeLabelValue select the workspace node group,
	// e.g. "coder/node-type" = "workspace".
	NodeLabelKey, NodeLabelValue string
	// TaintKey, TaintValue and TaintEffect are the workspace group's taint
	// the pods tolerate, e.g. coder/node-type=workspace:NoSchedule.
	TaintKey, TaintValue, TaintEffect string
	// Requests and limits of the workspace container, as Kubernetes
	// quantities ("500m", "2", "1Gi").
	CPURequest, MemoryRequest, CPULimit, MemoryLimit string
	// HomeSize is the size of the /home/coder claim, e.g. "10Gi".
	HomeSize string
	// Image is the workspace container image, e.g. DefaultImage.
	Image string
}

// Validate reports every field that would not make a working template,
// joined into one error.
func (p Params) Validate() error {
	var errs []error
	bad := func(field, value string, problems ...string) {
		if len(problems) > 0 {
			errs = append(errs, fmt.Errorf("%s %q: %s", field, value, strings.Join(problems, "; ")))
		}
	}
	required := func(field, value string) bool {
		if value == "" {
			errs = append(errs, fmt.Errorf("%s is empty", field))
			return false
		}
		return true
	}
	if required("Namespace", p.Namespace) {
		bad("Namespace", p.Namespace, validation.IsDNS1123Label(p.Namespace)...)
	}
	if required("NodeLabelKey", p.NodeLabelKey) {
		bad("NodeLabelKey", p.NodeLabelKey, validation.IsQualifiedName(p.NodeLabelKey)...)
	}
	bad("NodeLabelValue", p.NodeLabelValue, validation.IsValidLabelValue(p.NodeLabelValue)...)
	if required("TaintKey", p.TaintKey) {
		bad("TaintKey", p.TaintKey, validation.IsQualifiedName(p.TaintKey)...)
	}
	bad("TaintValue", p.TaintValue, validation.IsValidLabelValue(p.TaintValue)...)
	switch corev1.TaintEffect(p.TaintEffect) {
	case corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
	default:
		errs = append(errs, fmt.Errorf("TaintEffect %q: must be NoSchedule, PreferNoSchedule or NoExecute", p.TaintEffect))
	}
	quantity := func(field, value string) *resource.Quantity {
		if !required(field, value) {
			return nil
		}
		q, err := resource.ParseQuantity(value)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %q: not a Kubernetes quantity", field, value))
			return nil
		}
		if q.Sign() <= 0 {
			errs = append(errs, fmt.Errorf("%s %q: must be more than zero", field, value))
			return nil
		}
		return &q
	}
	atMost := func(reqField string, req *resource.Quantity, limField string, lim *resource.Quantity) {
		if req != nil && lim != nil && req.Cmp(*lim) > 0 {
			errs = append(errs, fmt.Errorf("%s %s is more than %s %s", reqField, req, limField, lim))
		}
	}
	atMost("CPURequest", quantity("CPURequest", p.CPURequest), "CPULimit", quantity("CPULimit", p.CPULimit))
	atMost("MemoryRequest", quantity("MemoryRequest", p.MemoryRequest), "MemoryLimit", quantity("MemoryLimit", p.MemoryLimit))
	quantity("HomeSize", p.HomeSize)
	if required("Image", p.Image) && strings.ContainsFunc(p.Image, func(r rune) bool { return r <= ' ' || r == '"' || r == '\\' }) {
		errs = append(errs, fmt.Errorf("Image %q: must not contain spaces, quotes or control characters", p.Image))
	}
	if len(errs) > 0 {
		return fmt.Errorf("workspace template: %w", errors.Join(errs...))
	}
	return nil
}

// Render validates p and returns the template's files by name.
func Render(p Params) (map[string][]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := mainTemplate.Execute(&buf, p); err != nil {
		return nil, fmt.Errorf("workspace template: render %s: %w", MainFile, err)
	}
	return map[string][]byte{MainFile: buf.Bytes()}, nil
}

// fileTime is every entry's modification time: fixed, so the archive
// depends on the files only.
var fileTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Tar packs files into a ustar archive, names sorted, each a regular file
// with mode 0644, owner 0 and a fixed time: the same files give the same
// bytes. Names must be relative, slash-separated and clean.
func Tar(files map[string][]byte) ([]byte, error) {
	if len(files) == 0 {
		return nil, errors.New("workspace template: no files to pack")
	}
	names := make([]string, 0, len(files))
	for name := range files {
		if name == "" || path.IsAbs(name) || path.Clean(name) != name || name == ".." || strings.HasPrefix(name, "../") || strings.Contains(name, "\\") {
			return nil, fmt.Errorf("workspace template: file name %q must be a clean relative path", name)
		}
		names = append(names, name)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range names {
		data := files[name]
		hdr := &tar.Header{
			Typeflag: tar.TypeReg,
			Name:     name,
			Mode:     0o644,
			Size:     int64(len(data)),
			ModTime:  fileTime,
			Format:   tar.FormatUSTAR,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("workspace template: pack %s: %w", name, err)
		}
		if _, err := tw.Write(data); err != nil {
			return nil, fmt.Errorf("workspace template: pack %s: %w", name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("workspace template: pack: %w", err)
	}
	return buf.Bytes(), nil
}

// Hash is the hex sha256 of Tar(files): the same for the same template,
// whatever order the map iterates in. Files Tar refuses hash to "".
func Hash(files map[string][]byte) string {
	archive, err := Tar(files)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(archive)
	return hex.EncodeToString(sum[:])
}

// hclString quotes s as an HCL string literal: escapes for quotes,
// backslashes and control characters, and template sequences ("${",
// "%{") doubled so they stay literal text.
func hclString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < ' ' || r == 0x7f:
			fmt.Fprintf(&b, `\u%04x`, r)
		case (r == '$' || r == '%') && i+1 < len(s) && s[i+1] == '{':
			b.WriteRune(r)
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
