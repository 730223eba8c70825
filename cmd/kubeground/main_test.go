package main

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestParseNode(t *testing.T) {
	tests := []struct {
		in         string
		wantName   string
		wantLabels map[string]string
		wantTaints []corev1.Taint
		wantErr    string
	}{
		{in: "general-0", wantName: "general-0", wantLabels: map[string]string{}},
		{
			in:         "coderd-0,label:coder/node-type=coderd,taint:coder/node-type=coderd:NoSchedule",
			wantName:   "coderd-0",
			wantLabels: map[string]string{"coder/node-type": "coderd"},
			wantTaints: []corev1.Taint{{Key: "coder/node-type", Value: "coderd", Effect: corev1.TaintEffectNoSchedule}},
		},
		{in: "n,taint:dedicated:NoExecute", wantName: "n", wantLabels: map[string]string{},
			wantTaints: []corev1.Taint{{Key: "dedicated", Effect: corev1.TaintEffectNoExecute}}},
		{in: ",label:a=b", wantErr: "name is empty"},
		{in: "n,label:novalue", wantErr: "is not K=V"},
		{in: "n,taint:k=v:Sometimes", wantErr: "NoSchedule|PreferNoSchedule|NoExecute"},
		{in: "n,color:blue", wantErr: "neither label"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseNode(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseNode(%q) err = %v, want one containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Name != tt.wantName || !reflect.DeepEqual(got.Labels, tt.wantLabels) || !reflect.DeepEqual(got.Taints, tt.wantTaints) {
				t.Errorf("parseNode(%q) = %+v, want name %q labels %v taints %v", tt.in, got, tt.wantName, tt.wantLabels, tt.wantTaints)
			}
		})
	}
}

func TestRunUsageErrors(t *testing.T) {
	for _, args := range [][]string{nil, {"sideways"}, {"up", "--bogus"}, {"up", "--node", ",x"}} {
		err := run(args, io.Discard, io.Discard)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("run(%q) = %v, want a usage error (exit 2)", args, err)
		}
	}
}

func TestDownWithoutKubeground(t *testing.T) {
	var out strings.Builder
	if err := run([]string{"down", "--state-dir", t.TempDir()}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "no kubeground running") {
		t.Errorf("down output = %q, want it to say no kubeground runs", out.String())
	}
}
