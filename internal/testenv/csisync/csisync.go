// Package csisync is a TEST STAND-IN for what the Secrets Store CSI driver
// and its AWS provider do on a real node: the proving ground's fake
// kubelets (kwok) mount nothing, so no driver ever fetches secrets. Sync
// plays that part from outside the cluster: for every pod scheduled to a
// node that mounts a `secrets-store.csi.k8s.io` volume naming a
// SecretProviderClass, it reads that class in the pod's namespace, fetches
// each listed object from Secrets Manager (moto) by objectName (an ARN or a
// name), and creates or updates the Kubernetes secrets its secretObjects
// describe — labelled `secrets-store.csi.k8s.io/managed=true` as the real
// driver labels them.
//
// As with the real driver, a synced secret exists only while a pod mounts
// the class: nothing is synced for a class no pod mounts, and each synced
// secret is owned by the pods that mount it, so Kubernetes' garbage
// collector deletes it after the last of them is gone. (The real driver
// makes its secrets owned by SecretProviderClassPodStatus objects, which the
// pods own; the outcome is the same.)
//
// It is not the driver: no files are written, no rotation events are
// emitted, only provider "aws" with Secrets Manager objects is understood,
// and jmesPath and failover regions are ignored.
package csisync

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"
)

// Names the real driver uses.
const (
	// Driver is the CSI driver name pods' volumes refer to.
	Driver = "secrets-store.csi.k8s.io"
	// AttrClass is the volume attribute naming the SecretProviderClass.
	AttrClass = "secretProviderClass"
	// LabelManaged marks secrets the driver synced.
	LabelManaged = "secrets-store.csi.k8s.io/managed"
	// ProviderAWS is the only provider this stand-in understands.
	ProviderAWS = "aws"
)

// GVR is the SecretProviderClass resource.
var GVR = schema.GroupVersionResource{Group: "secrets-store.csi.x-k8s.io", Version: "v1", Resource: "secretproviderclasses"}

// DefaultInterval is how often Run syncs when Options.Interval is zero.
const DefaultInterval = 500 * time.Millisecond

// Options are what Sync needs: the cluster and Secrets Manager.
type Options struct {
	Kube           kubernetes.Interface
	Dynamic        dynamic.Interface
	SecretsManager *secretsmanager.Client
	// Namespace limits Sync to the pods of one namespace; empty means every
	// namespace, as the real driver serves every pod on its node.
	Namespace string
	// Interval is Run's period (DefaultInterval when zero).
	Interval time.Duration
	// OnError hears the errors of Run's syncs; nil drops them.
	OnError func(error)
}

// Result says what one Sync did, as "namespace/name" of secrets.
type Result struct {
	Created []string
	Updated []string
}

// Run syncs every Interval until ctx ends.
func Run(ctx context.Context, opts Options) {
	interval := opts.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if _, err := Sync(ctx, opts); err != nil && ctx.Err() == nil && opts.OnError != nil {
			opts.OnError(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Start runs Run in the background; stop ends it and waits for it.
func Start(ctx context.Context, opts Options) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		Run(ctx, opts)
	}()
	return func() {
		cancel()
		wg.Wait()
	}
}

// classRef is a SecretProviderClass and the pods that mount it.
type classRef struct {
	namespace, name string
	pods            []corev1.Pod
}

// Sync does one pass: every mounted class's secrets are created or brought
// up to date. Errors of one class do not stop the others; they are joined.
func Sync(ctx context.Context, opts Options) (Result, error) {
	pods, err := opts.Kube.CoreV1().Pods(opts.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return Result{}, fmt.Errorf("csisync: list pods: %w", err)
	}
	var res Result
	var errs []error
	for _, ref := range mountedClasses(pods.Items) {
		if err := syncClass(ctx, opts, ref, &res); err != nil {
			errs = append(errs, fmt.Errorf("csisync: SecretProviderClass %s/%s: %w", ref.namespace, ref.name, err))
		}
	}
	return res, errors.Join(errs...)
}

// mountedClasses groups the live, scheduled pods by the classes their CSI
// volumes name. A pod the scheduler has not placed has no kubelet mounting
// anything yet; a finished or terminating pod no longer mounts.
func mountedClasses(pods []corev1.Pod) []*classRef {
	byKey := map[string]*classRef{}
	for _, p := range pods {
		if p.Spec.NodeName == "" || p.DeletionTimestamp != nil ||
			p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		for _, v := range p.Spec.Volumes {
			if v.CSI == nil || v.CSI.Driver != Driver || v.CSI.VolumeAttributes[AttrClass] == "" {
				continue
			}
			key := p.Namespace + "/" + v.CSI.VolumeAttributes[AttrClass]
			ref := byKey[key]
			if ref == nil {
				ref = &classRef{namespace: p.Namespace, name: v.CSI.VolumeAttributes[AttrClass]}
				byKey[key] = ref
			}
			ref.pods = append(ref.pods, p)
			break
		}
	}
	keys := slices.Sorted(maps.Keys(byKey))
	out := make([]*classRef, 0, len(keys))
	for _, k := range keys {
		out = append(out, byKey[k])
	}
	return out
}

// object is one entry of the aws provider's parameters.objects.
type object struct {
	ObjectName         string `json:"objectName"`
	ObjectAlias        string `json:"objectAlias,omitempty"`
	ObjectType         string `json:"objectType,omitempty"`
	ObjectVersion      string `json:"objectVersion,omitempty"`
	ObjectVersionLabel string `json:"objectVersionLabel,omitempty"`
}

// fileName is the name the provider mounts the object under, and the name
// secretObjects[].data[].objectName refers to.
func (o object) fileName() string {
	if o.ObjectAlias != "" {
		return o.ObjectAlias
	}
	return o.ObjectName
}

// secretObject is one entry of spec.secretObjects.
type secretObject struct {
	SecretName  string            `json:"secretName"`
	Type        string            `json:"type,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Data        []struct {
		ObjectName string `json:"objectName"`
		Key        string `json:"key"`
	} `json:"data"`
}

// classSpec is the part of a SecretProviderClass this stand-in reads.
type classSpec struct {
	Provider      string            `json:"provider"`
	Parameters    map[string]string `json:"parameters"`
	SecretObjects []secretObject    `json:"secretObjects"`
}

func syncClass(ctx context.Context, opts Options, ref *classRef, res *Result) error {
	spec, err := readClass(ctx, opts.Dynamic, ref.namespace, ref.name)
	if err != nil {
		return err
	}
	if spec.Provider != ProviderAWS {
		return fmt.Errorf("provider %q: this stand-in only plays %q", spec.Provider, ProviderAWS)
	}
	if len(spec.SecretObjects) == 0 {
		return nil // mounted as files only: nothing to sync
	}
	var objects []object
	if err := yaml.Unmarshal([]byte(spec.Parameters["objects"]), &objects); err != nil {
		return fmt.Errorf("parameters.objects is not a YAML list of objects: %w", err)
	}
	contents, err := fetch(ctx, opts.SecretsManager, objects)
	if err != nil {
		return err
	}
	for _, so := range spec.SecretObjects {
		if err := syncSecret(ctx, opts.Kube, ref, so, contents, res); err != nil {
			return err
		}
	}
	return nil
}

func readClass(ctx context.Context, dc dynamic.Interface, namespace, name string) (*classSpec, error) {
	u, err := dc.Resource(GVR).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err // the real driver fails the mount the same way
	}
	raw, _, err := unstructured.NestedMap(u.Object, "spec")
	if err != nil {
		return nil, err
	}
	var spec classSpec
	if err := runtimeConvert(raw, &spec); err != nil {
		return nil, fmt.Errorf("spec: %w", err)
	}
	return &spec, nil
}

// runtimeConvert decodes an unstructured map into a typed struct.
func runtimeConvert(in map[string]any, out any) error {
	data, err := yaml.Marshal(in)
	if err != nil {
		return err
	}
	return yaml.Unmarshal(data, out)
}

// fetch reads every object's current value, keyed by its file name.
func fetch(ctx context.Context, sm *secretsmanager.Client, objects []object) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, o := range objects {
		if o.ObjectType != "" && o.ObjectType != "secretsmanager" {
			return nil, fmt.Errorf("object %s: objectType %q is not played by this stand-in", o.ObjectName, o.ObjectType)
		}
		in := &secretsmanager.GetSecretValueInput{SecretId: aws.String(o.ObjectName)}
		if o.ObjectVersion != "" {
			in.VersionId = aws.String(o.ObjectVersion)
		}
		if o.ObjectVersionLabel != "" {
			in.VersionStage = aws.String(o.ObjectVersionLabel)
		}
		v, err := sm.GetSecretValue(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("get secret %s: %w", o.ObjectName, err)
		}
		if v.SecretString != nil {
			out[o.fileName()] = []byte(*v.SecretString)
		} else {
			out[o.fileName()] = v.SecretBinary
		}
	}
	return out, nil
}

// syncSecret creates the secret, or updates its data, labels and owners
// when they differ.
func syncSecret(ctx context.Context, kc kubernetes.Interface, ref *classRef, so secretObject, contents map[string][]byte, res *Result) error {
	want, err := wantedSecret(ref, so, contents)
	if err != nil {
		return err
	}
	secrets := kc.CoreV1().Secrets(ref.namespace)
	have, err := secrets.Get(ctx, so.SecretName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if _, err := secrets.Create(ctx, want, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create secret %s: %w", so.SecretName, err)
		}
		res.Created = append(res.Created, ref.namespace+"/"+so.SecretName)
		return nil
	}
	if err != nil {
		return fmt.Errorf("get secret %s: %w", so.SecretName, err)
	}
	if !needsUpdate(have, want) {
		return nil
	}
	updated := have.DeepCopy()
	updated.Data = want.Data
	if updated.Labels == nil {
		updated.Labels = map[string]string{}
	}
	maps.Copy(updated.Labels, want.Labels)
	updated.OwnerReferences = mergeOwners(have.OwnerReferences, want.OwnerReferences)
	if _, err := secrets.Update(ctx, updated, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update secret %s: %w", so.SecretName, err)
	}
	res.Updated = append(res.Updated, ref.namespace+"/"+so.SecretName)
	return nil
}

func wantedSecret(ref *classRef, so secretObject, contents map[string][]byte) (*corev1.Secret, error) {
	data := map[string][]byte{}
	for _, d := range so.Data {
		v, ok := contents[d.ObjectName]
		if !ok {
			return nil, fmt.Errorf("secretObjects %s: key %s refers to object %q, which parameters.objects does not list", so.SecretName, d.Key, d.ObjectName)
		}
		data[d.Key] = v
	}
	labels := maps.Clone(so.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[LabelManaged] = "true"
	typ := corev1.SecretType(so.Type)
	if typ == "" {
		typ = corev1.SecretTypeOpaque
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: so.SecretName, Namespace: ref.namespace,
			Labels: labels, Annotations: so.Annotations,
			OwnerReferences: podOwners(ref.pods),
		},
		Type: typ,
		Data: data,
	}, nil
}

// podOwners makes the mounting pods the secret's owners (not controllers),
// so the garbage collector removes it once none is left.
func podOwners(pods []corev1.Pod) []metav1.OwnerReference {
	out := make([]metav1.OwnerReference, 0, len(pods))
	for _, p := range pods {
		out = append(out, metav1.OwnerReference{APIVersion: "v1", Kind: "Pod", Name: p.Name, UID: p.UID})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UID < out[j].UID })
	return out
}

func needsUpdate(have, want *corev1.Secret) bool {
	if !maps.EqualFunc(have.Data, want.Data, slices.Equal) {
		return true
	}
	for k, v := range want.Labels {
		if have.Labels[k] != v {
			return true
		}
	}
	return len(missingOwners(have.OwnerReferences, want.OwnerReferences)) > 0
}

func missingOwners(have, want []metav1.OwnerReference) []metav1.OwnerReference {
	seen := map[types.UID]bool{}
	for _, o := range have {
		seen[o.UID] = true
	}
	var out []metav1.OwnerReference
	for _, o := range want {
		if !seen[o.UID] {
			out = append(out, o)
		}
	}
	return out
}

func mergeOwners(have, want []metav1.OwnerReference) []metav1.OwnerReference {
	return append(slices.Clone(have), missingOwners(have, want)...)
}
