package coderapi

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/coderctl/coderctl/internal/wstemplate"
)

// planned parses main.tf and plans a start with placeholder data.
func planned(t *testing.T, mainTF string) (*tfPlan, error) {
	t.Helper()
	archive, err := wstemplate.Tar(map[string][]byte{"main.tf": []byte(mainTF)})
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := parseTemplate(archive, nil)
	if err != nil {
		return nil, err
	}
	return tpl.plan(placeholderWorkspace(tpl, transitionStart))
}

// TestShippedTemplateAsKubernetesObjects: the shipped template's
// Deployment and claim, read as the API objects, carry the placement,
// sizing and home as wstemplate renders them.
func TestShippedTemplateAsKubernetesObjects(t *testing.T) {
	p, err := planned(t, shippedMainTF(t, "coder"))
	if err != nil {
		t.Fatal(err)
	}
	var addrs []string
	objs := map[string]*kubeObj{}
	for _, inst := range p.instances {
		addrs = append(addrs, inst.addr())
		obj, err := toKube(inst)
		if err != nil {
			t.Fatal(err)
		}
		if obj != nil {
			objs[inst.typ] = obj
		}
	}
	if got := strings.Join(addrs, " "); got != "coder_agent.main kubernetes_persistent_volume_claim_v1.home kubernetes_deployment_v1.main[0]" {
		t.Errorf("plan order %s, want agent, claim, then the deployment that depends on it", got)
	}
	pvc := objs[resPVCv1].pvc
	if pvc.Namespace != "coder" || pvc.Spec.StorageClassName != nil || pvc.Spec.Resources.Requests.Storage().String() != "10Gi" {
		t.Errorf("claim %+v", pvc)
	}
	dep := objs[resDeployV1].dep
	pod := dep.Spec.Template.Spec
	if dep.Namespace != "coder" || *dep.Spec.Replicas != 1 || pod.Volumes[0].PersistentVolumeClaim.ClaimName != pvc.Name ||
		pod.Containers[0].Env[0].Value != "placeholder" || pod.Containers[0].Command[2] != "placeholder" ||
		*pod.SecurityContext.RunAsUser != 1000 || pod.Tolerations[0].Effect != "NoSchedule" {
		raw, _ := json.MarshalIndent(dep, "", "  ")
		t.Errorf("deployment:\n%s", raw)
	}
}

// TestPlanRefusals: what the double reads as Terraform would, and what it
// refuses with a message naming it, as an import does (plan, then each
// object as the API reads it).
func TestPlanRefusals(t *testing.T) {
	shipped := shippedMainTF(t, "coder")
	for _, tc := range []struct {
		name, find, replace, want string
	}{
		{"string run_as_user is converted", "run_as_user     = 1000", `run_as_user     = "1000"`, ""},
		{"non-numeric run_as_user", "run_as_user     = 1000", `run_as_user     = "root"`, `"root" is not a number`},
		{"unknown function", "image   = var.image", "image   = tostring(var.image)", `no function named "tostring"`},
		{"self reference", "image   = var.image", "image   = self.image", "self references are not supported"},
		{"dynamic block", "        volume {", "        dynamic \"extra\" {\n          for_each = []\n          content {}\n        }\n        volume {", `"dynamic" blocks are not supported`},
		{"cycle", "labels    = local.labels", "labels    = kubernetes_deployment_v1.main[0].metadata[0].labels", "Cycle"},
		{"block twice where the API has one", "    strategy {", "    strategy {\n      type = \"Recreate\"\n    }\n    strategy {", `block "strategy" may appear only once`},
		{"for_each", "  count            = data.coder_workspace.me.start_count", "  for_each = toset([])", "for_each is not supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			edited := strings.Replace(shipped, tc.find, tc.replace, 1)
			if edited == shipped {
				t.Fatalf("%q not in the template", tc.find)
			}
			err := plannedObjects(t, edited)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func plannedObjects(t *testing.T, mainTF string) error {
	t.Helper()
	p, err := planned(t, mainTF)
	if err != nil {
		return err
	}
	for _, inst := range p.instances {
		if _, err := toKube(inst); err != nil {
			return err
		}
	}
	return nil
}
