package chartrepo

import (
	"fmt"
	"sort"
	"strings"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/releaseutil"
	"sigs.k8s.io/yaml"
)

// RenderKubeVersion is the cluster version Render assumes: the proving ground's.
const RenderKubeVersion = "v1.37.2"

// Manifests are rendered objects keyed "Kind/name" (CRDs and hooks
// included).
type Manifests map[string]string

// Render renders a chart (directory or .tgz) client-side, as `helm template
// --include-crds` does, so tests can check the objects that values produce
// without a cluster.
func Render(chartPath, releaseName, namespace string, values map[string]any) (Manifests, error) {
	ch, err := loader.Load(chartPath)
	if err != nil {
		return nil, err
	}
	in := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	in.ReleaseName = releaseName
	in.Namespace = namespace
	in.DryRun = true
	in.ClientOnly = true
	in.IncludeCRDs = true
	kv, err := chartutil.ParseKubeVersion(RenderKubeVersion)
	if err != nil {
		return nil, err
	}
	in.KubeVersion = kv
	rel, err := in.Run(ch, values)
	if err != nil {
		return nil, err
	}
	out := Manifests{}
	docs := releaseutil.SplitManifests(rel.Manifest)
	for _, h := range rel.Hooks { // `helm template` prints hooks too
		docs["hook:"+h.Path+":"+h.Name] = h.Manifest
	}
	for _, crd := range ch.CRDObjects() {
		docs["crd:"+crd.Filename] = string(crd.File.Data)
	}
	for _, doc := range docs {
		var head struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			return nil, fmt.Errorf("rendered document is not YAML: %w\n%s", err, doc)
		}
		if head.Kind == "" {
			continue // comments only
		}
		out[head.Kind+"/"+head.Metadata.Name] = doc
	}
	return out, nil
}

// Decode unmarshals the object key ("Kind/name") into v, e.g. an
// *appsv1.Deployment.
func (m Manifests) Decode(key string, v any) error {
	doc, ok := m[key]
	if !ok {
		return fmt.Errorf("no %s rendered (have %s)", key, strings.Join(m.Keys(), ", "))
	}
	return yaml.UnmarshalStrict([]byte(doc), v)
}

// Keys lists the rendered objects, sorted.
func (m Manifests) Keys() []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
