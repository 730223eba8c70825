// Package ebscsi is a TEST STAND-IN for the controller half of the AWS EBS
// CSI driver (the external-provisioner sidecar plus the driver's
// CreateVolume/DeleteVolume) on the proving ground, where kwok nodes mount
// nothing and no EBS exists.
//
// What it models, as on EKS with the driver installed:
//   - Only claims of a StorageClass whose provisioner is ebs.csi.aws.com are
//     provisioned, and only once kube-controller-manager's PV controller has
//     handed them to that provisioner (annotation
//     volume.kubernetes.io/storage-provisioner). Claims of any other class,
//     or of no class, stay Pending: nothing else provisions on AWS.
//   - WaitForFirstConsumer: nothing happens until kube-scheduler has chosen
//     a node for a pod using the claim (annotation
//     volume.kubernetes.io/selected-node); the volume is made in that node's
//     zone. Immediate: in the zone of the class's allowedTopologies, else of
//     the first schedulable node.
//   - The PersistentVolume: CSI source (driver ebs.csi.aws.com, volumeHandle
//     vol-<17 hex>, fsType from csi.storage.k8s.io/fstype or ext4), node
//     affinity topology.kubernetes.io/zone In [zone] (what the driver's
//     CreateVolume returns as accessible topology), capacity = the request
//     rounded up to whole GiB (EBS sizes are GiB), claimRef to the claim,
//     the class's reclaim policy and mount options, annotation
//     pv.kubernetes.io/provisioned-by. kube-controller-manager's PV
//     controller then binds claim and volume, as it does on EKS.
//   - Parameters the driver refuses (an unknown key, an unknown `type`, a
//     number that does not parse, iops together with iopsPerGB,
//     blockExpress on a type other than io2, an unknown reserved
//     csi.storage.k8s.io/ key): a Warning ProvisioningFailed event on the
//     claim with the driver's message, and the claim stays Pending.
//   - The EBS volume: with an EC2 client (Options.EC2, or the add-on API's
//     endpoint), CreateVolume in moto in the claim's zone, of the class's
//     type and encryption, tagged as the driver tags (ebs.go); the PV's
//     handle is its ID. Volumes outlive the cluster: deleting a cluster
//     does not delete the volumes of the claims it still had, on AWS
//     either, so a teardown finds them in moto.
//   - Reclaim Delete: a Released volume it provisioned is deleted, its EBS
//     volume first (DeleteVolume), as the external provisioner does.
//
// With Options.Addons it follows the EKS add-on: nothing is provisioned
// unless the aws-ebs-csi-driver add-on exists, and while it does the
// add-on's node plugin DaemonSet (kube-system/ebs-csi-node, tolerating every
// taint, the add-on's default) exists, so kwok runs it on every node.
//
// It is not the driver: nothing is attached or mounted, volume expansion and snapshots are not played, and no
// CSINode is required.
package ebscsi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Names the real driver and Kubernetes use.
const (
	// Driver is the EBS CSI driver's name: the provisioner of its classes.
	Driver = "ebs.csi.aws.com"
	// AnnStorageProvisioner is set on a claim by the PV controller when it
	// hands the claim to an external provisioner.
	AnnStorageProvisioner     = "volume.kubernetes.io/storage-provisioner"
	annBetaStorageProvisioner = "volume.beta.kubernetes.io/storage-provisioner"
	// AnnSelectedNode is set on a claim by kube-scheduler for
	// WaitForFirstConsumer classes.
	AnnSelectedNode = "volume.kubernetes.io/selected-node"
	// AnnProvisionedBy marks a volume with the provisioner that made it.
	AnnProvisionedBy = "pv.kubernetes.io/provisioned-by"
	// LabelZone is the topology key of the volumes' node affinity.
	LabelZone = corev1.LabelTopologyZone
	// LabelDriverZone is the driver's own zone key (older drivers); a
	// node's zone is read from it first.
	LabelDriverZone = "topology.ebs.csi.aws.com/zone"
	// EventProvisioningFailed is the reason of the Warning event on a claim
	// the driver refused.
	EventProvisioningFailed = "ProvisioningFailed"
	// EventProvisioningSucceeded is the reason of the Normal event on a
	// provisioned claim.
	EventProvisioningSucceeded = "ProvisioningSucceeded"
)

// DefaultInterval is Run's period when Options.Interval is zero.
const DefaultInterval = 200 * time.Millisecond

// Options are what the provisioner needs.
type Options struct {
	Kube kubernetes.Interface
	// Namespace limits it to one namespace's claims; empty means all, as
	// the real provisioner serves the whole cluster.
	Namespace string
	// Interval is Run's period (DefaultInterval when zero).
	Interval time.Duration
	// OnError hears the errors of Run's passes; nil drops them.
	OnError func(error)
	// Addons, with Cluster, makes the driver exist only while the EKS
	// add-on aws-ebs-csi-driver does (DescribeAddon on this client: on the
	// ground, the add-on stand-in ekstest, as moto has no add-on API), as
	// on EKS: without it nothing is provisioned. While it exists, Sync
	// also keeps the add-on's node plugin DaemonSet kube-system/ebs-csi-node
	// (see addon.go). Nil: the driver is always there.
	Addons  *eks.Client
	Cluster string
	// EC2 is where the driver's CreateVolume and DeleteVolume make and
	// delete EBS volumes (moto on the ground). Nil: a client on the
	// Addons endpoint when that is set (ebs.go), else no EBS volume is
	// made and the PV's handle is made up.
	EC2 *ec2.Client
	// TagClusterID plays the controller's --k8s-tag-cluster-id (the EKS
	// add-on's controller.k8sTagClusterId): volumes also get
	// kubernetes.io/cluster/<id>=owned, KubernetesCluster and Name tags.
	// Empty, as the add-on's default: only the driver's own tags.
	TagClusterID string
}

// Result says what one Sync did.
type Result struct {
	Provisioned []string // "namespace/claim" → a volume was created
	Refused     []string // "namespace/claim" → refused, with an event
	Deleted     []string // volumes deleted after their claim was
}

// Provisioner remembers the events it emitted, so a refused claim gets one
// event per distinct failure, not one per pass.
type Provisioner struct {
	opts Options

	mu     sync.Mutex
	warned map[string]string // claim UID -> last failure message
	ec2    *ec2.Client       // see ec2Client
}

// New makes a provisioner; see Sync, Run and Start.
func New(opts Options) *Provisioner {
	return &Provisioner{opts: opts, warned: map[string]string{}}
}

// Start runs the provisioner in the background until stop is called (or
// ctx ends); stop waits for it.
func Start(ctx context.Context, opts Options) (stop func()) {
	p := New(opts)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.Run(ctx)
	}()
	return func() {
		cancel()
		wg.Wait()
	}
}

// Run syncs every Interval until ctx ends.
func (p *Provisioner) Run(ctx context.Context) {
	interval := p.opts.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if _, err := p.Sync(ctx); err != nil && ctx.Err() == nil && p.opts.OnError != nil {
			p.opts.OnError(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Sync does one pass: provisions every claim that is ready for it and
// deletes released volumes it provisioned whose policy is Delete. Errors of
// one claim do not stop the others; they are joined.
func (p *Provisioner) Sync(ctx context.Context) (Result, error) {
	var res Result
	if p.opts.Addons != nil {
		installed, err := p.addonInstalled(ctx)
		if err != nil {
			return res, err
		}
		if err := p.syncNodePlugin(ctx, installed); err != nil || !installed {
			return res, err
		}
	}
	claims, err := p.opts.Kube.CoreV1().PersistentVolumeClaims(p.opts.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return res, fmt.Errorf("ebscsi: list claims: %w", err)
	}
	sort.Slice(claims.Items, func(i, j int) bool {
		return claims.Items[i].Namespace+"/"+claims.Items[i].Name < claims.Items[j].Namespace+"/"+claims.Items[j].Name
	})
	var errs []error
	for i := range claims.Items {
		if err := p.syncClaim(ctx, &claims.Items[i], &res); err != nil {
			errs = append(errs, fmt.Errorf("ebscsi: claim %s/%s: %w", claims.Items[i].Namespace, claims.Items[i].Name, err))
		}
	}
	if err := p.deleteReleased(ctx, &res); err != nil {
		errs = append(errs, err)
	}
	return res, errors.Join(errs...)
}

// syncClaim provisions one claim if it is this driver's to provision now.
func (p *Provisioner) syncClaim(ctx context.Context, claim *corev1.PersistentVolumeClaim, res *Result) error {
	if claim.Spec.VolumeName != "" || claim.DeletionTimestamp != nil || claim.Status.Phase != corev1.ClaimPending {
		return nil
	}
	if claim.Annotations[AnnStorageProvisioner] != Driver && claim.Annotations[annBetaStorageProvisioner] != Driver {
		return nil // not (yet) handed to this provisioner by the PV controller
	}
	className := ""
	if claim.Spec.StorageClassName != nil {
		className = *claim.Spec.StorageClassName
	}
	if className == "" {
		return nil
	}
	class, err := p.opts.Kube.StorageV1().StorageClasses().Get(ctx, className, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil // the PV controller reports a missing class itself
	}
	if err != nil {
		return err
	}
	if class.Provisioner != Driver {
		return nil
	}
	wffc := class.VolumeBindingMode != nil && *class.VolumeBindingMode == storagev1.VolumeBindingWaitForFirstConsumer
	if wffc && claim.Annotations[AnnSelectedNode] == "" {
		return nil // the scheduler has not placed a consumer yet
	}
	pvName := "pvc-" + string(claim.UID)
	if _, err := p.opts.Kube.CoreV1().PersistentVolumes().Get(ctx, pvName, metav1.GetOptions{}); err == nil {
		return nil // made in an earlier pass; the PV controller binds it
	} else if !apierrors.IsNotFound(err) {
		return err
	}
	zone, err := p.zone(ctx, class, claim, wffc)
	if err != nil {
		return p.refuse(ctx, claim, class, err, res)
	}
	params, err := ValidateParameters(class.Parameters)
	if err != nil {
		return p.refuse(ctx, claim, class, fmt.Errorf("rpc error: code = InvalidArgument desc = %w", err), res)
	}
	handle := volumeID(claim)
	if c := p.ec2Client(); c != nil {
		if handle, err = p.createEBSVolume(ctx, c, pvName, claim, class.Parameters, params, zone, sizeGiB(claim)); err != nil {
			return p.refuse(ctx, claim, class, err, res)
		}
	}
	pv := volume(pvName, handle, claim, class, params, zone)
	if _, err := p.opts.Kube.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create volume %s: %w", pvName, err)
	}
	p.mu.Lock()
	delete(p.warned, string(claim.UID))
	p.mu.Unlock()
	p.event(ctx, claim, corev1.EventTypeNormal, EventProvisioningSucceeded, fmt.Sprintf("Successfully provisioned volume %s", pvName))
	res.Provisioned = append(res.Provisioned, claim.Namespace+"/"+claim.Name)
	return nil
}

// zone is where the volume goes: the selected node's zone for
// WaitForFirstConsumer, else the class's allowed topology or the first
// schedulable node's zone.
func (p *Provisioner) zone(ctx context.Context, class *storagev1.StorageClass, claim *corev1.PersistentVolumeClaim, wffc bool) (string, error) {
	if wffc {
		name := claim.Annotations[AnnSelectedNode]
		node, err := p.opts.Kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return "", fmt.Errorf("error getting selected node %q: %w", name, err)
		}
		if z := nodeZone(node); z != "" {
			return z, nil
		}
		return "", fmt.Errorf("selected node %q has no zone label (%s or %s)", name, LabelDriverZone, LabelZone)
	}
	for _, term := range class.AllowedTopologies {
		for _, e := range term.MatchLabelExpressions {
			if (e.Key == LabelZone || e.Key == LabelDriverZone) && len(e.Values) > 0 {
				return e.Values[0], nil
			}
		}
	}
	nodes, err := p.opts.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", err
	}
	var zones []string
	for i := range nodes.Items {
		if z := nodeZone(&nodes.Items[i]); z != "" && !nodes.Items[i].Spec.Unschedulable {
			zones = append(zones, z)
		}
	}
	if len(zones) == 0 {
		return "", errors.New("no node with a zone label to place the volume")
	}
	sort.Strings(zones)
	return zones[0], nil
}

func nodeZone(n *corev1.Node) string {
	if z := n.Labels[LabelDriverZone]; z != "" {
		return z
	}
	return n.Labels[LabelZone]
}

// refuse records a failure as the real provisioner does: a Warning event on
// the claim (once per distinct message), the claim left Pending.
func (p *Provisioner) refuse(ctx context.Context, claim *corev1.PersistentVolumeClaim, class *storagev1.StorageClass, cause error, res *Result) error {
	msg := fmt.Sprintf("failed to provision volume with StorageClass %q: %v", class.Name, cause)
	p.mu.Lock()
	seen := p.warned[string(claim.UID)] == msg
	p.warned[string(claim.UID)] = msg
	p.mu.Unlock()
	if !seen {
		p.event(ctx, claim, corev1.EventTypeWarning, EventProvisioningFailed, msg)
		res.Refused = append(res.Refused, claim.Namespace+"/"+claim.Name)
	}
	return nil
}

// event records an event on the claim; a failure to record is not the
// claim's failure.
func (p *Provisioner) event(ctx context.Context, claim *corev1.PersistentVolumeClaim, typ, reason, msg string) {
	now := metav1.NewTime(time.Now())
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: claim.Name + ".", Namespace: claim.Namespace},
		InvolvedObject: corev1.ObjectReference{
			Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: claim.Namespace, Name: claim.Name,
			UID: claim.UID, ResourceVersion: claim.ResourceVersion,
		},
		Reason: reason, Message: msg, Type: typ,
		Source:         corev1.EventSource{Component: Driver + "_ebs-csi-controller"},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
		ReportingController: Driver, ReportingInstance: "ebs-csi-controller",
	}
	_, _ = p.opts.Kube.CoreV1().Events(claim.Namespace).Create(ctx, ev, metav1.CreateOptions{})
}

// Parameters are a class's parameters as the driver reads them.
type Parameters struct {
	Type      string // gp3 when unset
	FSType    string // ext4 when unset
	Encrypted bool
	KMSKeyID  string
}

// volumeTypes are the `type` values the driver's CreateDisk accepts.
var volumeTypes = []string{"io1", "io2", "gp2", "gp3", "sc1", "st1", "standard", "sbp1", "sbg1"}

// reservedKeys are the csi.storage.k8s.io/ parameters the external
// provisioner understands (and strips before calling the driver).
var reservedKeys = []string{
	"csi.storage.k8s.io/fstype",
	"csi.storage.k8s.io/provisioner-secret-name", "csi.storage.k8s.io/provisioner-secret-namespace",
	"csi.storage.k8s.io/controller-publish-secret-name", "csi.storage.k8s.io/controller-publish-secret-namespace",
	"csi.storage.k8s.io/node-stage-secret-name", "csi.storage.k8s.io/node-stage-secret-namespace",
	"csi.storage.k8s.io/node-publish-secret-name", "csi.storage.k8s.io/node-publish-secret-namespace",
	"csi.storage.k8s.io/controller-expand-secret-name", "csi.storage.k8s.io/controller-expand-secret-namespace",
	"csi.storage.k8s.io/node-expand-secret-name", "csi.storage.k8s.io/node-expand-secret-namespace",
}

// ValidateParameters checks a class's parameters as the external
// provisioner and the driver's CreateVolume do, and returns what the
// volume is made with. Keys other than csi.storage.k8s.io/fstype are case
// insensitive, as in the driver; tagSpecification_N keys are accepted.
func ValidateParameters(params map[string]string) (Parameters, error) {
	out := Parameters{Type: "gp3", FSType: "ext4"}
	var iops, iopsPerGB bool
	blockExpress := false
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		value := params[key]
		if strings.HasPrefix(key, "csi.storage.k8s.io/") {
			if !containsString(reservedKeys, key) {
				return out, fmt.Errorf("found unknown parameter key %q with reserved namespace csi.storage.k8s.io/", key)
			}
			if key == "csi.storage.k8s.io/fstype" && value != "" {
				out.FSType = value
			}
			continue
		}
		switch strings.ToLower(key) {
		case "fstype": // deprecated spelling, still honoured
			if value != "" {
				out.FSType = value
			}
		case "type":
			if !containsString(volumeTypes, value) {
				return out, fmt.Errorf("invalid AWS VolumeType %q", value)
			}
			out.Type = value
		case "iopspergb", "iops", "throughput":
			if _, err := strconv.Atoi(value); err != nil {
				return out, fmt.Errorf("Could not parse invalid %s: %w", key, err)
			}
			iops = iops || strings.EqualFold(key, "iops")
			iopsPerGB = iopsPerGB || strings.EqualFold(key, "iopsPerGB")
		case "encrypted":
			out.Encrypted = value == "true" // the driver's own test: anything else is false
		case "kmskeyid":
			out.KMSKeyID = value
		case "blockexpress":
			blockExpress = value == "true"
		case "allowautoiopspergbincrease", "ext4bigalloc":
		case "blocksize", "inodesize", "bytesperinode", "numberofinodes", "ext4clustersize":
			if !alphanumeric(value) {
				return out, fmt.Errorf("Could not parse %s (%s)", key, value)
			}
		default:
			if !strings.HasPrefix(strings.ToLower(key), "tagspecification") {
				return out, fmt.Errorf("Invalid parameter key %s for CreateVolume", key)
			}
		}
	}
	if iops && iopsPerGB {
		return out, errors.New("invalid StorageClass parameters; specify either IOPS or IOPSPerGb, not both")
	}
	if blockExpress && out.Type != "io2" {
		return out, errors.New("Block Express is only supported on io2 volumes")
	}
	return out, nil
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func alphanumeric(s string) bool {
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') {
			return false
		}
	}
	return s != ""
}

const gib = 1 << 30

// volume is the PersistentVolume the external provisioner would create from
// the driver's answer.
func volume(name, handle string, claim *corev1.PersistentVolumeClaim, class *storagev1.StorageClass, params Parameters, zone string) *corev1.PersistentVolume {
	size := sizeGiB(claim)
	reclaim := corev1.PersistentVolumeReclaimDelete
	if class.ReclaimPolicy != nil {
		reclaim = *class.ReclaimPolicy
	}
	mode := corev1.PersistentVolumeFilesystem
	if claim.Spec.VolumeMode != nil {
		mode = *claim.Spec.VolumeMode
	}
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{AnnProvisionedBy: Driver},
		},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:    corev1.ResourceList{corev1.ResourceStorage: *resource.NewQuantity(size*gib, resource.BinarySI)},
			AccessModes: claim.Spec.AccessModes,
			ClaimRef: &corev1.ObjectReference{
				Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: claim.Namespace, Name: claim.Name,
				UID: claim.UID, ResourceVersion: claim.ResourceVersion,
			},
			PersistentVolumeReclaimPolicy: reclaim,
			StorageClassName:              class.Name,
			MountOptions:                  class.MountOptions,
			VolumeMode:                    &mode,
			PersistentVolumeSource: corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{
				Driver:           Driver,
				VolumeHandle:     handle,
				FSType:           params.FSType,
				VolumeAttributes: map[string]string{"storage.kubernetes.io/csiProvisionerIdentity": "ebscsi-stand-in-" + Driver},
			}},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{
					{Key: LabelZone, Operator: corev1.NodeSelectorOpIn, Values: []string{zone}},
				}}},
			}},
		},
	}
	if mode == corev1.PersistentVolumeBlock {
		pv.Spec.CSI.FSType = ""
	}
	return pv
}

// sizeGiB is the claim's request rounded up to whole GiB (EBS sizes are
// GiB), at least 1.
func sizeGiB(claim *corev1.PersistentVolumeClaim) int64 {
	req := claim.Spec.Resources.Requests[corev1.ResourceStorage]
	return max((req.Value()+gib-1)/gib, 1)
}

// volumeID is a stable, EBS-looking volume ID for a claim, when no EBS
// volume is made.
func volumeID(claim *corev1.PersistentVolumeClaim) string {
	sum := sha256.Sum256([]byte(claim.UID))
	return "vol-" + hex.EncodeToString(sum[:])[:17]
}

// deleteReleased deletes the volumes this driver provisioned whose claim is
// gone and whose reclaim policy is Delete, as the external provisioner does
// after DeleteVolume succeeds.
func (p *Provisioner) deleteReleased(ctx context.Context, res *Result) error {
	pvs, err := p.opts.Kube.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("ebscsi: list volumes: %w", err)
	}
	var errs []error
	for _, pv := range pvs.Items {
		if pv.Annotations[AnnProvisionedBy] != Driver || pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete ||
			pv.Status.Phase != corev1.VolumeReleased || pv.DeletionTimestamp != nil {
			continue
		}
		if p.opts.Namespace != "" && (pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.Namespace != p.opts.Namespace) {
			continue
		}
		// The driver's DeleteVolume first: the PV goes only once the EBS
		// volume has, as the external provisioner does.
		if c := p.ec2Client(); c != nil && pv.Spec.CSI != nil && strings.HasPrefix(pv.Spec.CSI.VolumeHandle, "vol-") {
			if err := deleteEBSVolume(ctx, c, pv.Spec.CSI.VolumeHandle); err != nil {
				errs = append(errs, fmt.Errorf("ebscsi: delete EBS volume %s of %s: %w", pv.Spec.CSI.VolumeHandle, pv.Name, err))
				continue
			}
		}
		err := p.opts.Kube.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("ebscsi: delete volume %s: %w", pv.Name, err))
			continue
		}
		res.Deleted = append(res.Deleted, pv.Name)
	}
	return errors.Join(errs...)
}
