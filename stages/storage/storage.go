// Package storage gives workspaces room on disk: a default StorageClass for
// the EBS CSI driver (gp3, encrypted, bound where the pod lands, growable),
// the only class marked default. Since EKS 1.30 no class is marked default,
// so a workspace's PersistentVolumeClaim without a class would stay Pending
// forever. The driver itself is the aws-ebs-csi-driver add-on the eks stage
// installs; the checkpoint also checks that its node plugin runs on every
// node, tainted ones included, or volumes could not attach there.
package storage

import (
	"time"

	"github.com/coderctl/coderctl/internal/deploy"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
)

// Name is the stage's registry name.
const Name = "storage"

// Step names; tests refer to them as "storage/<name>".
const (
	StepDefaultClass = "default-class"
	StepNodePlugin   = "node-plugin"
)

// The class coderctl makes default.
const (
	// ClassName says what the class gives: gp3 volumes, encrypted.
	ClassName = "gp3-encrypted"
	// Provisioner is the EBS CSI driver's name.
	Provisioner = "ebs.csi.aws.com"
	// AnnotationDefault marks the default class; the admission plugin
	// DefaultStorageClass gives its name to claims that name none.
	AnnotationDefault = "storageclass.kubernetes.io/is-default-class"
	// annotationBetaDefault is the old spelling the admission plugin still
	// honours; a class marked default this way counts too.
	annotationBetaDefault = "storageclass.beta.kubernetes.io/is-default-class"
)

// Check names of the checkpoint.
const (
	CheckDefaultClass = "default-storage-class"
	CheckNodePlugin   = "ebs-csi-node"
)

// Typical durations: the class is one API call; the node plugin starts
// on new nodes within a minute.
const (
	typicalClass      = 2 * time.Second
	typicalNodePlugin = 30 * time.Second
)

// New builds the storage stage.
func New(d *deploy.Deps) engine.Stage {
	s := &stage{d: d}
	return engine.Stage{
		Name:    Name,
		Summary: "default StorageClass for workspaces: EBS CSI, gp3, encrypted, WaitForFirstConsumer, expandable",
		// nodegroups: the checkpoint checks the EBS CSI node plugin on
		// every node; the class itself needs only the cluster.
		Needs: []string{names.StageEKS, names.StageNodeGroups},
		Steps: []engine.Step{
			{Name: StepDefaultClass, Needs: []string{names.StageEKS}, Typical: typicalClass,
				Plan: s.plan, Apply: s.apply, Destroy: s.destroy},
			// Nothing to create: the add-on runs the plugin. The step waits
			// for it on the nodes that just joined, so the checkpoint after
			// it judges a settled cluster.
			{Name: StepNodePlugin, Needs: []string{names.StageEKS, names.StageNodeGroups}, Typical: typicalNodePlugin,
				Plan: s.planNodePlugin, Apply: s.waitNodePlugin},
		},
		Verify: s.verify,
	}
}

// stage holds the stage's dependencies.
type stage struct {
	d *deploy.Deps
}
