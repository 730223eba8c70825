package sizing

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/coderctl/coderctl/internal/config"
)

func TestNodePlacement(t *testing.T) {
	groups := []config.NodeGroupSpec{{Name: "cd", Labels: map[string]string{"coder/node-type": "coderd"},
		Taints: []config.Taint{{Key: "coder/node-type", Value: "coderd", Effect: "NoSchedule"}, {Key: "dedicated", Value: "coder", Effect: "NoExecute"}}}}
	sel, tol := NodePlacement(groups, "coderd")
	if sel["coder/node-type"] != "coderd" || len(tol) != 2 || tol[1].Key != "dedicated" || tol[1].Effect != corev1.TaintEffectNoExecute {
		t.Errorf("placement %v %+v, want the group's taints tolerated", sel, tol)
	}
	sel, tol = NodePlacement(nil, "provisioner")
	if sel["coder/node-type"] != "provisioner" || len(tol) != 1 || tol[0].Value != "provisioner" || tol[0].Operator != corev1.TolerationOpEqual {
		t.Errorf("default placement %v %+v", sel, tol)
	}
}
