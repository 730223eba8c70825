package provisioners

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/coderctl/coderctl/internal/coderapi"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/testenv/stagetest"
)

func TestDecideKey(t *testing.T) {
	key := &coderapi.ProvisionerKey{ID: "id-1", Name: KeyName}
	cases := []struct {
		name   string
		secret keySecret
		key    *coderapi.ProvisionerKey
		want   keyAction
		reason string
	}{
		{"nothing anywhere", keySecret{}, nil, keyCreate, "create provisioner key"},
		{"empty secret, no key", keySecret{exists: true}, nil, keyCreate, "create provisioner key"},
		{"secret of a deleted key", keySecret{exists: true, filled: true, keyID: "id-0"}, nil, keyCreate, "no longer has"},
		{"key without its secret", keySecret{}, key, keyRotate, "rotate"},
		{"key with an emptied secret", keySecret{exists: true}, key, keyRotate, "rotate"},
		{"secret of an older key", keySecret{exists: true, filled: true, keyID: "id-0"}, key, keyRotate, "older key"},
		{"secret of this key", keySecret{exists: true, filled: true, keyID: "id-1"}, key, keyKeep, "holds key"},
		{"hand-made secret (no id)", keySecret{exists: true, filled: true}, key, keyKeep, "holds key"},
	}
	for _, tc := range cases {
		got, reason := decideKey(tc.secret, tc.key)
		if got != tc.want || !strings.Contains(reason, tc.reason) {
			t.Errorf("%s: decideKey = %v %q, want %v mentioning %q", tc.name, got, reason, tc.want, tc.reason)
		}
	}
}

func TestNeedsEmptyPSK(t *testing.T) {
	cases := map[string]bool{
		"2.17.0": true, "2.16.1": true, "2.10.0": true, "2.17.0-rc.1": true,
		"2.17.1": false, "2.18.0": false, "2.36.1": false, "not-a-version": true,
	}
	for v, want := range cases {
		if got := NeedsEmptyPSK(v); got != want {
			t.Errorf("NeedsEmptyPSK(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestComputedValues(t *testing.T) {
	cases := []struct {
		chartVersion string
		users        string
		replicas     float64
		emptyPSK     bool
	}{
		{"2.17.0", "50", 20, true},
		{"2.36.1", "500", 40, false},
		{"2.36.1", "800", 70, false},
	}
	for _, tc := range cases {
		env := stagetest.New(t, map[string]string{"CODER_DOMAIN": "coder.example.com", "USERS": tc.users, "PROVISIONER_CHART_VERSION": tc.chartVersion})
		s := &stage{d: env.Deps}
		raw, _ := json.Marshal(s.computedValues("key-id"))
		var v struct {
			Coder struct {
				ReplicaCount   float64           `json:"replicaCount"`
				PodAnnotations map[string]string `json:"podAnnotations"`
				Env            []map[string]string
			} `json:"coder"`
			ProvisionerDaemon map[string]any `json:"provisionerDaemon"`
		}
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatal(err)
		}
		psk, hasPSK := v.ProvisionerDaemon["pskSecretName"]
		if hasPSK != tc.emptyPSK || (hasPSK && psk != "") {
			t.Errorf("chart %s: pskSecretName %v (set %v), want set to \"\" only for <= 2.17.0", tc.chartVersion, psk, hasPSK)
		}
		if v.Coder.ReplicaCount != tc.replicas {
			t.Errorf("users %s: replicas %v, want %v", tc.users, v.Coder.ReplicaCount, tc.replicas)
		}
		if v.ProvisionerDaemon["keySecretName"] != KeySecretName || v.ProvisionerDaemon["tags"] != nil {
			t.Errorf("provisionerDaemon %v, want the key secret and no tags", v.ProvisionerDaemon)
		}
		if v.Coder.PodAnnotations[annKeyID] != "key-id" {
			t.Errorf("pod annotations %v, want the key id", v.Coder.PodAnnotations)
		}
		for _, e := range v.Coder.Env {
			if e["name"] == "CODER_PROVISIONERD_TAGS" {
				t.Error("CODER_PROVISIONERD_TAGS set next to a key")
			}
		}
	}
}

func TestPlanWarnsWhenNodeGroupsAreTooSmall(t *testing.T) {
	// Nothing grows the groups: the shipped provisioner group counts at its
	// desiredCapacity (2 nodes, 14 provisioners).
	env := stagetest.New(t, map[string]string{"CODER_DOMAIN": "coder.example.com", "USERS": "500", "AUTOSCALER": "none"})
	s := &stage{d: env.Deps} // no cluster access: planned from inputs alone
	acts, err := s.planRelease(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(acts) != 2 || acts[0].Kind != engine.Create || !strings.Contains(acts[0].Resource, "40 replicas") {
		t.Fatalf("plan %+v, want an install of 40 replicas and a warning", acts)
	}
	if acts[1].Kind != engine.Nothing || !strings.HasPrefix(acts[1].Reason, "warning: ") || !strings.Contains(acts[1].Reason, "raise its desiredCapacity to 6") {
		t.Errorf("capacity action %+v", acts[1])
	}
}
