package sizing

import (
	"strings"
	"testing"

	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/engine"
)

func TestForUsers(t *testing.T) {
	cases := []struct {
		users            int
		provisioners     int
		coderdReplicas   int
		coderdCPURequest string
		dbClass          string
		basis            string // a fragment of the provisioner basis
		note             string // a fragment of some note, "" for none required
	}{
		{0, 20, 2, "2", "db.m7i.large", "fewer than 100", ""}, // clamped to 1 user
		{1, 20, 2, "2", "db.m7i.large", "fewer than 100", ""},
		{99, 20, 2, "2", "db.m7i.large", "fewer than 100", ""},
		{100, 30, 2, "2", "db.m7i.large", "100–250", ""},
		{250, 30, 2, "2", "db.m7i.large", "100–250", ""},
		{251, 40, 2, "2", "db.m7i.large", "250–500", ""},
		{500, 40, 2, "2", "db.m7i.large", "250–500", "Premium"},
		{501, 50, 2, "2", "db.m7i.large", "validated architectures", ""},
		{600, 50, 2, "2", "db.m7i.large", "validated architectures", ""},
		{601, 60, 2, "2", "db.m7i.large", "validated architectures", ""},
		{1000, 90, 2, "2", "db.m7i.large", "validated architectures", ""},
		{1001, 100, 2, "3", "db.m7i.xlarge", "validated architectures", ""},
		{1300, 120, 2, "3", "db.m7i.xlarge", "capped at 120", "capped at 120"},
		{2000, 120, 2, "3", "db.m7i.xlarge", "capped at 120", "capped at 120"},
		{3000, 120, 4, "6", "db.m7i.2xlarge", "capped at 120", ""},
		{5000, 120, 4, "6", "db.m7i.2xlarge", "capped at 120", "beyond Coder's largest validated"},
	}
	for _, tc := range cases {
		s := For(tc.users, "m7i.12xlarge")
		p := s.Provisioners
		if p.Replicas != tc.provisioners || p.ConcurrentBuilds != tc.provisioners {
			t.Errorf("users=%d: provisioners %d (builds %d), want %d", tc.users, p.Replicas, p.ConcurrentBuilds, tc.provisioners)
		}
		if p.Pod.Requests != (Resources{"1", "1Gi"}) {
			t.Errorf("users=%d: provisioner requests %+v, want 1 vCPU / 1Gi", tc.users, p.Pod.Requests)
		}
		if !strings.Contains(p.Basis, tc.basis) {
			t.Errorf("users=%d: basis %q, want it to mention %q", tc.users, p.Basis, tc.basis)
		}
		if s.Coderd.Replicas != tc.coderdReplicas || s.Coderd.Pod.Requests.CPU != tc.coderdCPURequest {
			t.Errorf("users=%d: coderd %d × %s CPU, want %d × %s", tc.users, s.Coderd.Replicas, s.Coderd.Pod.Requests.CPU, tc.coderdReplicas, tc.coderdCPURequest)
		}
		if s.Database.InstanceClass != tc.dbClass || !s.Database.MultiAZ {
			t.Errorf("users=%d: database %+v, want %s multi-AZ", tc.users, s.Database, tc.dbClass)
		}
		if tc.note != "" && !strings.Contains(strings.Join(s.Notes, "\n"), tc.note) {
			t.Errorf("users=%d: notes %q, want one mentioning %q", tc.users, s.Notes, tc.note)
		}
	}
}

func TestGuideUsersGetTheGuideNodeBounds(t *testing.T) {
	s := For(500, "m7i.12xlarge")
	if s.Coderd.Pod.Requests != (Resources{"2", "4Gi"}) || s.Coderd.Pod.Limits != (Resources{"4", "8Gi"}) {
		t.Errorf("coderd pod %+v, want requests 2/4Gi limits 4/8Gi (sized for m7i.xlarge)", s.Coderd.Pod)
	}
	// 48 vCPU - 0.5 reserved at 0.5 vCPU each = 95; 190 GiB at 2 GiB = 95.
	if s.Workspaces.PerNode != 95 || s.Workspaces.MinNodes != 2 || s.Workspaces.MaxNodes != 6 {
		t.Errorf("workspaces %+v, want 95 per node, 2..6 nodes", s.Workspaces)
	}
	if w := For(500, "x9.weird").Workspaces; w.MaxNodes != 0 || w.PerNode != 0 {
		t.Errorf("unknown instance type gave workspace bounds %+v, want none", w)
	}
}

func TestShapeOf(t *testing.T) {
	cases := []struct {
		typ  string
		want Shape
		ok   bool
	}{
		{"c7i.2xlarge", Shape{8, 16}, true},
		{"m7i.xlarge", Shape{4, 16}, true},
		{"m7i.12xlarge", Shape{48, 192}, true},
		{"r6i.large", Shape{2, 16}, true},
		{"m7g.4xlarge", Shape{16, 64}, true},
		{"c6id.xlarge", Shape{4, 8}, true},
		{"t3.medium", Shape{2, 4}, true},
		{"T3.Large", Shape{2, 8}, true},
		{"c5n.2xlarge", Shape{}, false}, // network variants have more memory
		{"m7i.metal-24xl", Shape{}, false},
		{"x2idn.16xlarge", Shape{}, false},
		{"t3", Shape{}, false},
		{"", Shape{}, false},
	}
	for _, tc := range cases {
		got, ok := ShapeOf(tc.typ)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ShapeOf(%q) = %+v, %v; want %+v, %v", tc.typ, got, ok, tc.want, tc.ok)
		}
	}
}

func TestPodsPerNode(t *testing.T) {
	prov := For(500, "").Provisioners.Pod
	coderd := For(500, "").Coderd.Pod
	cases := []struct {
		typ  string
		pod  Pod
		want int
	}{
		{"c7i.2xlarge", prov, 7}, // 7.5 vCPU free: CPU bound
		{"m7i.2xlarge", prov, 7}, // 30 GiB free, still CPU bound
		{"c7i.4xlarge", prov, 15},
		{"m7i.xlarge", coderd, 1},
		{"t3.medium", coderd, 0}, // 1.5 vCPU free < 2
		{"unknown.type", prov, 0},
		{"c7i.2xlarge", Pod{Requests: Resources{"bogus", "1Gi"}}, 0},
	}
	for _, tc := range cases {
		if got := PodsPerNode(tc.typ, tc.pod); got != tc.want {
			t.Errorf("PodsPerNode(%s, %+v) = %d, want %d", tc.typ, tc.pod.Requests, got, tc.want)
		}
	}
}

func shippedGroups(t *testing.T) []config.NodeGroupSpec {
	t.Helper()
	cfg, err := config.LoadCluster("../../cluster-config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return config.NodeGroups(cfg)
}

// The shipped groups hold the default sizing (500 users) when the
// cluster-autoscaler grows them, and are counted at desiredCapacity when
// nothing does.
func TestShippedNodeGroupsCountedAsTheyCanGrow(t *testing.T) {
	groups := shippedGroups(t)
	cases := []struct {
		users       int
		autoscaling bool
		status      engine.CheckStatus
		provNodes   int // provisioner nodes counted
		provGrows   bool
		nodesNeeded int // provisioner nodes needed
		mention     []string
	}{
		{50, true, engine.Pass, 6, true, 3, []string{"20 provisioners", "maxSize"}},
		{500, true, engine.Pass, 6, true, 6, []string{"40 provisioners", "500 workspaces"}},
		{1300, true, engine.Warn, 6, true, 18, []string{"raise its maxSize to 18", "coder-provisioner (1–6"}},
		{50, false, engine.Warn, 2, false, 3, []string{"raise its desiredCapacity to 3", "AUTOSCALER=none", "coder-provisioner"}},
		{500, false, engine.Warn, 2, false, 6, []string{"coder-workspace (2 × m7i.12xlarge at desiredCapacity", "raise its desiredCapacity to 6"}},
	}
	for _, tc := range cases {
		s := For(tc.users, "m7i.12xlarge")
		fits := Fits(s, groups, tc.autoscaling)
		prov := fits[0]
		if prov.Role != RoleProvisioner || prov.NodesNeeded != tc.nodesNeeded || prov.PerNode != 7 ||
			prov.MaxNodes != tc.provNodes || prov.Grows != tc.provGrows {
			t.Errorf("users=%d autoscaling=%v: provisioner fit %+v, want 7 per node, %d needed, %d counted (grows %v)",
				tc.users, tc.autoscaling, prov, tc.nodesNeeded, tc.provNodes, tc.provGrows)
		}
		// coderd's group is fixed (2–2): counted at 2 either way, never "grows".
		if cd := fits[1]; cd.Role != RoleCoderd || cd.Problem != "" || cd.NodesNeeded != 2 || cd.MaxNodes != 2 || cd.Grows {
			t.Errorf("users=%d autoscaling=%v: coderd fit %+v, want 2 fixed nodes and no problem", tc.users, tc.autoscaling, cd)
		}
		c := CapacityCheck(s, groups, tc.autoscaling)
		if c.Status != tc.status || c.Name != "capacity" {
			t.Errorf("users=%d autoscaling=%v: check %+v, want %s", tc.users, tc.autoscaling, c, tc.status)
		}
		for _, m := range tc.mention {
			if !strings.Contains(c.Reason, m) {
				t.Errorf("users=%d autoscaling=%v: check reason %q does not mention %q", tc.users, tc.autoscaling, c.Reason, m)
			}
		}
	}
}

func TestCapacityPassesWhenGroupsAreBigEnough(t *testing.T) {
	groups := shippedGroups(t)
	for i := range groups {
		if groups[i].Labels[NodeTypeLabel] == RoleProvisioner {
			groups[i].Min, groups[i].Max, groups[i].Desired = 6, 6, 6
		}
	}
	c := CapacityCheck(For(500, "m7i.12xlarge"), groups, true)
	if c.Status != engine.Pass || !strings.Contains(c.Reason, "40 provisioners") {
		t.Errorf("check %+v, want pass for 40 provisioners", c)
	}
	// coderd at 3,000 users needs 8 vCPU nodes: m7i.xlarge cannot hold one.
	c = CapacityCheck(For(3000, "m7i.12xlarge"), groups, true)
	if c.Status != engine.Warn || !strings.Contains(c.Reason, "does not fit on a m7i.xlarge") {
		t.Errorf("check %+v, want a warning that a coderd pod does not fit", c)
	}
	c = CapacityCheck(For(500, ""), nil, true)
	if c.Status != engine.Warn || !strings.Contains(c.Reason, "no node group") {
		t.Errorf("check without groups %+v, want a warning naming the missing group", c)
	}
}
