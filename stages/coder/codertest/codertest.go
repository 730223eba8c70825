// Package codertest builds the world the coder and provisioners stage tests
// run in: the shared Kubernetes control plane with fake coderd and
// provisioner nodes, the loopback chart repository, moto with public
// subnets and an ACM certificate, the load balancer controller double, the
// Coder API double, and the upstream stages' outputs (CERT_ARN,
// SECRETS_ROLE_ARN, the coder-secrets secret) seeded directly.
package codertest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	acmtypes "github.com/aws/aws-sdk-go-v2/service/acm/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
	"github.com/coderctl/coderctl/internal/testenv/chartrepo"
	"github.com/coderctl/coderctl/internal/testenv/coderapi"
	"github.com/coderctl/coderctl/internal/testenv/csisync"
	"github.com/coderctl/coderctl/internal/testenv/kubeground"
	"github.com/coderctl/coderctl/internal/testenv/lbcontroller"
	"github.com/coderctl/coderctl/internal/testenv/stagetest"
)

// Fixed values of the world.
const (
	Domain       = "coder.example.com"
	CoderVersion = "2.36.1"
	// RoleARN stands in for the secrets stage's IRSA role.
	RoleARN     = "arn:aws:iam::123456789012:role/coder-prod-coder-secrets"
	DatabaseURL = "postgres://coder:not-a-real-password@db.internal:5432/coder?sslmode=require"
	namespace   = "coder"
)

// World is one test's environment.
type World struct {
	*stagetest.Env
	Ground *kubeground.Ground
	Kube   kubernetes.Interface
	Repo   *chartrepo.Repo
	Coder  *coderapi.Server
	// ELB is a client of moto that does not count calls (the controller's
	// and the test's own reads are not coderctl's).
	ELB     *elbv2.Client
	Route53 *route53.Client
	CertARN string
	VPCID   string
	ZoneID  string
	HelmDir string
	acm     *acm.Client
}

// Options shape the world.
type Options struct {
	Licensed bool
	// HostedZone creates a Route53 zone for Domain and sets HOSTED_ZONE_ID.
	HostedZone bool
	// Inputs are extra env-file values.
	Inputs map[string]string
	// CSISync lets the Secrets Store CSI driver stand-in sync coder-secrets
	// from Secrets Manager while a pod mounts the SecretProviderClass,
	// instead of seeding the secret.
	CSISync bool
}

// New builds a world. The test binary's TestMain must be testenv.Main.
func New(t *testing.T, opts Options) *World {
	t.Helper()
	ctx := context.Background()
	ground := kubeground.Require(t)
	repo := chartrepo.Require(t)
	ensureNodes(ctx, t, ground)
	cleanNamespace(ctx, t, ground.Client()) // a failed earlier test may have left it
	double := coderapi.Require(t, coderapi.Options{Version: "v" + CoderVersion + "+abcdef0", Licensed: opts.Licensed, Kube: ground.Client(), Namespace: namespace})

	inputs := stagetest.DefaultInputs()
	inputs["CODER_DOMAIN"] = Domain
	inputs["CODER_VERSION"] = CoderVersion
	inputs["CODER_CHART_REPO"] = repo.URL
	inputs["CODER_URL"] = double.URL()
	inputs["CODER_CA_FILE"] = double.CAFile()
	for k, v := range opts.Inputs {
		inputs[k] = v
	}
	w := &World{Ground: ground, Kube: ground.Client(), Repo: repo, Coder: double, HelmDir: t.TempDir()}
	w.Env = stagetest.New(t, inputs) // resets moto
	if opts.HostedZone {
		w.ZoneID = w.createZone(ctx, t)
		if err := w.Deps.State.Set("HOSTED_ZONE_ID", w.ZoneID); err != nil {
			t.Fatal(err)
		}
		w.Env.Reload(t)
	}
	w.UseKube()
	cfg, err := w.Moto.AWSConfig(ctx, w.Deps.Region())
	if err != nil {
		t.Fatal(err)
	}
	w.ELB = elbv2.NewFromConfig(cfg)
	w.Route53 = route53.NewFromConfig(cfg)
	w.VPCID = publicSubnets(ctx, t, ec2.NewFromConfig(cfg), w.Deps.Deployment(), w.Deps.Region())
	w.acm = acm.NewFromConfig(cfg)
	w.CertARN = w.RequestCertificate(t, Domain)
	if err := w.Deps.Record(map[string]string{names.KeyCertARN: w.CertARN, names.KeySecretsRoleARN: RoleARN}); err != nil {
		t.Fatal(err)
	}
	if opts.CSISync {
		w.startCSISync(ctx, t, secretsmanager.NewFromConfig(cfg))
	} else {
		w.SeedSecret(t)
	}
	stop, err := lbcontroller.Start(ctx, lbcontroller.Options{
		Kube: w.Kube, ELB: w.ELB, EC2: ec2.NewFromConfig(cfg), Cluster: w.Deps.Deployment(), VPCID: w.VPCID,
		Interval: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last-in first-out: the namespace goes while the
	// controller still runs, so it can release the Service's finalizer.
	t.Cleanup(stop)
	t.Cleanup(func() { cleanNamespace(context.Background(), t, w.Kube) })
	return w
}

// UseKube points Deps at the ground (again after Reload).
func (w *World) UseKube() {
	g := w.Ground
	w.Deps.Kube = func(context.Context) (kubernetes.Interface, *rest.Config, error) {
		return g.Client(), g.RESTConfig(), nil
	}
}

// Reload rebuilds Deps from the state file, as a new process would.
func (w *World) Reload(t *testing.T) {
	t.Helper()
	w.Env.Reload(t)
	w.UseKube()
}

// LookupEnv is a process environment holding token as CODER_SESSION_TOKEN
// (none when token is empty).
func (w *World) LookupEnv(token string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		if k == "CODER_SESSION_TOKEN" && token != "" {
			return token, true
		}
		return "", false
	}
}

// Stubs stand in for the stages coder and provisioners need, with the step
// names they refer to; they do nothing (their outputs are seeded).
func Stubs() []engine.Stage {
	noop := func(context.Context, engine.Reporter) error { return nil }
	return []engine.Stage{
		engine.Stage{Name: names.StageSecrets},
		engine.Stage{Name: names.StageACM, Steps: []engine.Step{{Name: names.ACMStepIssued, Apply: noop}}},
		engine.Stage{Name: names.StageNodeGroups},
	}
}

// Run runs the stages' graph with the stubs, limited to only.
func (w *World) Run(t *testing.T, stages []engine.Stage, mode engine.Mode, only ...string) (*engine.Summary, []engine.Event, error) {
	t.Helper()
	return w.Env.Run(t, append(Stubs(), stages...), engine.Options{Mode: mode, Only: only})
}

// SeedSecret creates what the CSI driver would sync from Secrets Manager.
func (w *World) SeedSecret(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	ensureNamespace(ctx, t, w.Kube)
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "coder-secrets", Namespace: namespace, Labels: map[string]string{"secrets-store.csi.k8s.io/managed": "true"}},
		Data:       map[string][]byte{"database-url": []byte(DatabaseURL)},
	}
	_, err := w.Kube.CoreV1().Secrets(namespace).Create(ctx, secret, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		_, err = w.Kube.CoreV1().Secrets(namespace).Update(ctx, secret, metav1.UpdateOptions{})
	}
	if err != nil {
		t.Fatal(err)
	}
}

func (w *World) createZone(ctx context.Context, t *testing.T) string {
	t.Helper()
	cfg, err := w.Moto.AWSConfig(ctx, "us-west-2")
	if err != nil {
		t.Fatal(err)
	}
	out, err := route53.NewFromConfig(cfg).CreateHostedZone(ctx, &route53.CreateHostedZoneInput{
		Name: aws.String("example.com"), CallerReference: aws.String(fmt.Sprint(time.Now().UnixNano())),
	})
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(aws.ToString(out.HostedZone.Id), "/hostedzone/")
}

// Fake nodes: two coderd (4 vCPU / 16 GiB, as m7i.xlarge) and two
// provisioner nodes roomy enough for the smallest sizing (20 × 1 vCPU).
func nodeSpecs() []kubeground.NodeSpec {
	spec := func(name, role, cpu, mem string) kubeground.NodeSpec {
		return kubeground.NodeSpec{
			Name:   name,
			Labels: map[string]string{"coder/node-type": role, "topology.kubernetes.io/zone": "us-west-2a"},
			Taints: []corev1.Taint{{Key: "coder/node-type", Value: role, Effect: corev1.TaintEffectNoSchedule}},
			CPU:    cpu, Memory: mem,
		}
	}
	return []kubeground.NodeSpec{
		spec("coderd-1", "coderd", "4", "16Gi"), spec("coderd-2", "coderd", "4", "16Gi"),
		spec("provisioner-1", "provisioner", "16", "32Gi"), spec("provisioner-2", "provisioner", "16", "32Gi"),
	}
}

func ensureNodes(ctx context.Context, t *testing.T, g *kubeground.Ground) {
	t.Helper()
	for _, spec := range nodeSpecs() {
		if _, err := g.Client().CoreV1().Nodes().Get(ctx, spec.Name, metav1.GetOptions{}); err == nil {
			continue
		}
		if err := g.AddNode(ctx, spec); err != nil {
			t.Fatal(err)
		}
	}
}

func ensureNamespace(ctx context.Context, t *testing.T, kc kubernetes.Interface) {
	t.Helper()
	_, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// cleanNamespace deletes the coder namespace and waits until it is gone.
// Services go first, while a load balancer controller can still release
// their finalizers; any finalizer left is removed by force.
func cleanNamespace(ctx context.Context, t *testing.T, kc kubernetes.Interface) {
	t.Helper()
	services, err := kc.CoreV1().Services(namespace).List(ctx, metav1.ListOptions{})
	if err == nil {
		for _, svc := range services.Items {
			_ = kc.CoreV1().Services(namespace).Delete(ctx, svc.Name, metav1.DeleteOptions{})
		}
	}
	err = kc.CoreV1().Namespaces().Delete(ctx, namespace, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return
	}
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := kc.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		dropFinalizers(ctx, kc)
		return false, nil
	})
	if err != nil {
		t.Errorf("namespace %s not deleted: %v", namespace, err)
	}
}

func dropFinalizers(ctx context.Context, kc kubernetes.Interface) {
	services, err := kc.CoreV1().Services(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	for i := range services.Items {
		svc := &services.Items[i]
		if svc.DeletionTimestamp != nil && len(svc.Finalizers) > 0 && time.Since(svc.DeletionTimestamp.Time) > 10*time.Second {
			svc.Finalizers = nil
			_, _ = kc.CoreV1().Services(namespace).Update(ctx, svc, metav1.UpdateOptions{})
		}
	}
}

// publicSubnets creates the VPC and the public subnets (tagged for ELB and
// the cluster) the load balancer controller places NLBs in.
func publicSubnets(ctx context.Context, t *testing.T, client *ec2.Client, cluster, region string) string {
	t.Helper()
	vpc, err := client.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	vpcID := aws.ToString(vpc.Vpc.VpcId)
	for i, zone := range []string{"a", "b", "c"} {
		_, err := client.CreateSubnet(ctx, &ec2.CreateSubnetInput{
			VpcId: aws.String(vpcID), CidrBlock: aws.String(fmt.Sprintf("10.0.%d.0/24", i)), AvailabilityZone: aws.String(region + zone),
			TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeSubnet, Tags: []ec2types.Tag{
				{Key: aws.String(lbcontroller.TagRoleELB), Value: aws.String("1")},
				{Key: aws.String(lbcontroller.ClusterTag(cluster)), Value: aws.String("shared")},
			}}},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return vpcID
}

// RequestCertificate asks moto's ACM for a certificate of domain and
// *.domain and returns its ARN.
func (w *World) RequestCertificate(t *testing.T, domain string) string {
	t.Helper()
	out, err := w.acm.RequestCertificate(context.Background(), &acm.RequestCertificateInput{
		DomainName: aws.String(domain), SubjectAlternativeNames: []string{"*." + domain},
		ValidationMethod: acmtypes.ValidationMethodDns,
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.CertificateArn)
}

// SecretProviderClass CRD, as the stand-in driver chart installs it.
var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// startCSISync installs the SecretProviderClass CRD, puts the deployment's
// coder/<deployment>/database-url in Secrets Manager, creates the class the secrets stage would, and runs
// the CSI stand-in for the rest of the test.
func (w *World) startCSISync(ctx context.Context, t *testing.T, sm *secretsmanager.Client) {
	t.Helper()
	dc, err := dynamic.NewForConfig(w.Ground.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	installCRD(ctx, t, dc, w.Repo)
	out, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String(names.DatabaseURLSecretName(w.Deps.Deployment())), SecretString: aws.String(DatabaseURL)})
	if err != nil {
		t.Fatal(err)
	}
	ensureNamespace(ctx, t, w.Kube)
	spc := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "secrets-store.csi.x-k8s.io/v1",
		"kind":       "SecretProviderClass",
		"metadata":   map[string]any{"name": "coder-secrets", "namespace": namespace},
		"spec": map[string]any{
			"provider": "aws",
			"parameters": map[string]any{"objects": fmt.Sprintf("- objectName: %q\n  objectType: secretsmanager\n  objectAlias: database-url",
				aws.ToString(out.ARN))},
			"secretObjects": []any{map[string]any{
				"secretName": "coder-secrets", "type": "Opaque",
				"data": []any{map[string]any{"objectName": "database-url", "key": "database-url"}},
			}},
		},
	}}
	if _, err := dc.Resource(csisync.GVR).Namespace(namespace).Create(ctx, spc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	stop := csisync.Start(context.Background(), csisync.Options{
		Kube: w.Kube, Dynamic: dc, SecretsManager: sm, Namespace: namespace, Interval: 100 * time.Millisecond,
		OnError: func(err error) { t.Logf("csisync: %v", err) },
	})
	t.Cleanup(stop)
}

func installCRD(ctx context.Context, t *testing.T, dc dynamic.Interface, repo *chartrepo.Repo) {
	t.Helper()
	data, err := os.ReadFile(repo.SecretProviderClassCRD())
	if err != nil {
		t.Fatal(err)
	}
	crd := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(data, &crd.Object); err != nil {
		t.Fatal(err)
	}
	if _, err := dc.Resource(crdGVR).Create(ctx, crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := dc.Resource(csisync.GVR).Namespace(namespace).List(ctx, metav1.ListOptions{})
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("SecretProviderClass CRD not served: %v", err)
	}
}
