package secrets

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
)

// SecretProviderClassGVR is the CSI driver's SecretProviderClass resource.
var SecretProviderClassGVR = schema.GroupVersionResource{
	Group: "secrets-store.csi.x-k8s.io", Version: "v1", Resource: "secretproviderclasses",
}

// managedLabels mark what coderctl owns in the cluster.
func managedLabels() map[string]string {
	return map[string]string{"app.kubernetes.io/managed-by": "coderctl"}
}

// spcObject is one entry of the aws provider's parameters.objects.
type spcObject struct {
	ObjectName  string `json:"objectName"`
	ObjectType  string `json:"objectType"`
	ObjectAlias string `json:"objectAlias"`
}

// wantedSPCSpec is the class's spec: each secret by ARN under its key as
// alias, all synced into coder-secrets.
func (s *stage) wantedSPCSpec(objs []syncedObject) (map[string]any, error) {
	objects := make([]spcObject, 0, len(objs))
	data := make([]any, 0, len(objs))
	for _, o := range objs {
		objects = append(objects, spcObject{ObjectName: o.arn, ObjectType: "secretsmanager", ObjectAlias: o.key})
		data = append(data, map[string]any{"objectName": o.key, "key": o.key})
	}
	listed, err := yaml.Marshal(objects)
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"provider": "aws",
		"parameters": map[string]any{
			"objects": string(listed),
			// Saves the provider a node lookup per mount (AWS's advice).
			"region": s.d.Region(),
		},
		"secretObjects": []any{map[string]any{
			"secretName": names.CoderSecret,
			"type":       string(corev1.SecretTypeOpaque),
			"labels":     toAny(managedLabels()),
			"data":       data,
		}},
	}, nil
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// spcState is the class in the cluster, compared with what is wanted.
type spcState struct {
	existing *unstructured.Unstructured // nil when missing
	want     map[string]any
	same     bool
}

func (s *stage) readSPC(ctx context.Context, k *kubeAccess, objs []syncedObject) (*spcState, error) {
	want, err := s.wantedSPCSpec(objs)
	if err != nil {
		return nil, err
	}
	u, err := k.dc.Resource(SecretProviderClassGVR).Namespace(names.CoderNamespace).Get(ctx, names.SecretProviderClass, metav1.GetOptions{})
	// Not found also when the driver, and with it the CRD, is not installed.
	if apierrors.IsNotFound(err) {
		return &spcState{want: want}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read SecretProviderClass %s/%s: %w", names.CoderNamespace, names.SecretProviderClass, err)
	}
	have, _, _ := unstructured.NestedMap(u.Object, "spec")
	same := jsonEqual(have, want) && hasLabels(u.GetLabels(), managedLabels())
	return &spcState{existing: u, want: want, same: same}, nil
}

// jsonEqual compares two values as their JSON forms decode.
func jsonEqual(a, b any) bool {
	var x, y any
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	if errA != nil || errB != nil || json.Unmarshal(ja, &x) != nil || json.Unmarshal(jb, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

func (s *stage) planSPC(ctx context.Context) ([]engine.Action, error) {
	res := "secretproviderclass/" + names.CoderNamespace + "/" + names.SecretProviderClass
	objs, ok, err := s.syncedObjects(ctx)
	if err != nil {
		return nil, err
	}
	k, kerr := s.kubeClients(ctx)
	if !ok || kerr != nil {
		why := "once " + s.dbURL().name + " exists"
		if kerr != nil {
			why = fmt.Sprintf("once the cluster is reachable (%v)", kerr)
		}
		return []engine.Action{{Kind: engine.Create, Resource: res, Reason: "create " + why}}, nil
	}
	st, err := s.readSPC(ctx, k, objs)
	switch {
	case err != nil:
		return nil, err
	case st.existing == nil:
		return []engine.Action{{Kind: engine.Create, Resource: res, Reason: fmt.Sprintf("missing: sync %d secrets into %s", len(objs), names.CoderSecret)}}, nil
	case !isSecretARN(objs[0].arn, s.dbURL().name):
		// State still names the legacy secret: the database-url step
		// moves it before this step runs.
		return []engine.Action{{Kind: engine.Update, Resource: res, Reason: "sync " + s.dbURL().name + " once it is moved there"}}, nil
	case !st.same:
		return []engine.Action{{Kind: engine.Update, Resource: res, Reason: "spec differs from the secrets to sync"}}, nil
	}
	return []engine.Action{{Kind: engine.Nothing, Resource: res, Reason: "up to date"}}, nil
}

func (s *stage) applySPC(ctx context.Context, r engine.Reporter) error {
	objs, ok, err := s.syncedObjects(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%s is not in %s: run 'coderctl stage secrets apply' again", names.KeyDatabaseURLSecretARN, s.d.State.Path())
	}
	k, err := s.kubeClients(ctx)
	if err != nil {
		return err
	}
	if err := s.ensureNamespace(ctx, r, k); err != nil {
		return err
	}
	st, err := s.readSPC(ctx, k, objs)
	if err != nil || st.same {
		return err
	}
	client := k.dc.Resource(SecretProviderClassGVR).Namespace(names.CoderNamespace)
	if st.existing == nil {
		r.Progress(fmt.Sprintf("creating SecretProviderClass %s/%s", names.CoderNamespace, names.SecretProviderClass))
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": SecretProviderClassGVR.GroupVersion().String(),
			"kind":       "SecretProviderClass",
			"metadata": map[string]any{
				"name": names.SecretProviderClass, "namespace": names.CoderNamespace, "labels": toAny(managedLabels()),
			},
			"spec": st.want,
		}}
		_, err = client.Create(ctx, u, metav1.CreateOptions{})
		return wrapSPC("create", err)
	}
	r.Progress(fmt.Sprintf("updating SecretProviderClass %s/%s", names.CoderNamespace, names.SecretProviderClass))
	u := st.existing.DeepCopy()
	u.Object["spec"] = st.want
	labels := u.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	for k, v := range managedLabels() {
		labels[k] = v
	}
	u.SetLabels(labels)
	_, err = client.Update(ctx, u, metav1.UpdateOptions{})
	return wrapSPC("update", err)
}

func wrapSPC(verb string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s SecretProviderClass %s/%s: %w", verb, names.CoderNamespace, names.SecretProviderClass, err)
}

// ensureNamespace creates the coder namespace when missing; the coder
// stage's release goes into it later.
func (s *stage) ensureNamespace(ctx context.Context, r engine.Reporter, k *kubeAccess) error {
	_, err := k.kc.CoreV1().Namespaces().Get(ctx, names.CoderNamespace, metav1.GetOptions{})
	if err == nil {
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return fmt.Errorf("read namespace %s: %w", names.CoderNamespace, err)
	}
	r.Progress("creating namespace " + names.CoderNamespace)
	_, err = k.kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: names.CoderNamespace, Labels: managedLabels()}}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create namespace %s: %w", names.CoderNamespace, err)
	}
	return nil
}

// destroySPC deletes the class; the namespace stays (the coder stage's
// release lives there, and deleting a namespace is not undoable).
func (s *stage) destroySPC(ctx context.Context, r engine.Reporter) error {
	k, err := s.kubeForDestroy(ctx, r, "SecretProviderClass "+names.SecretProviderClass)
	if err != nil || k == nil {
		return err
	}
	r.Progress(fmt.Sprintf("deleting SecretProviderClass %s/%s", names.CoderNamespace, names.SecretProviderClass))
	err = k.dc.Resource(SecretProviderClassGVR).Namespace(names.CoderNamespace).Delete(ctx, names.SecretProviderClass, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return wrapSPC("delete", err)
}

// isSecretARN reports whether arn is the ARN of the secret called name:
// Secrets Manager appends "-" and six random characters to the name.
func isSecretARN(arn, name string) bool {
	_, rest, ok := strings.Cut(arn, ":secret:")
	return ok && len(rest) == len(name)+7 && strings.HasPrefix(rest, name+"-")
}
