package wstemplate

import (
	"strings"
	"testing"

	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/sizing"
)

func TestForDeployment(t *testing.T) {
	cfg, err := config.LoadCluster("../../cluster-config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	shipped := config.NodeGroups(cfg)
	untainted := make([]config.NodeGroupSpec, len(shipped))
	copy(untainted, shipped)
	for i := range untainted {
		if untainted[i].Labels[sizing.NodeTypeLabel] == sizing.RoleWorkspace {
			untainted[i].Taints = nil
		}
	}
	tests := []struct {
		name    string
		groups  []config.NodeGroupSpec
		want    Params
		wantErr string
	}{
		{"shipped", shipped, Params{Namespace: "coder", NodeLabelKey: "coder/node-type", NodeLabelValue: "workspace",
			TaintKey: "coder/node-type", TaintValue: "workspace", TaintEffect: "NoSchedule",
			CPURequest: "500m", MemoryRequest: "2Gi", CPULimit: "2", MemoryLimit: "4Gi", HomeSize: "10Gi", Image: DefaultImage}, ""},
		{"no workspace group", shipped[:1], Params{}, "no node group in the cluster config is labelled coder/node-type=workspace"},
		{"untainted workspace group", untainted, Params{}, "node group coder-workspace has no NoSchedule taint"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ForDeployment(tc.groups, sizing.For(500, "m7i.12xlarge"), "coder")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ForDeployment = %+v, %v; want %+v", got, err, tc.want)
			}
			if _, err := Render(got); err != nil {
				t.Errorf("the deployment's params do not render: %v", err)
			}
		})
	}
}
