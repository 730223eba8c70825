package engine

import (
	"strings"
	"testing"
)

// TestReadKeysContract: with WithInputKeys, a stage may read only inputs,
// its own outputs and the outputs of stages it needs (transitively).
func TestReadKeysContract(t *testing.T) {
	isInput := func(k string) bool { return k == "AWS_REGION" }
	net := &Definition{StageName: "network", WriteKeys: []string{"VPC_ID"}}
	eks := &Definition{StageName: "eks", Requires: []string{"network"}, WriteKeys: []string{"CLUSTER_ENDPOINT"}}
	cases := []struct {
		name    string
		reader  *Definition
		wantErr string
	}{
		{"input", &Definition{StageName: "x", Requires: []string{"eks"}, ReadKeys: []string{"AWS_REGION"}}, ""},
		{"own output", &Definition{StageName: "x", WriteKeys: []string{"X"}, ReadKeys: []string{"X"}}, ""},
		{"direct need", &Definition{StageName: "x", Requires: []string{"eks"}, ReadKeys: []string{"CLUSTER_ENDPOINT"}}, ""},
		{"transitive need", &Definition{StageName: "x", Requires: []string{"eks"}, ReadKeys: []string{"VPC_ID"}}, ""},
		{"stage not needed", &Definition{StageName: "x", Requires: []string{"network"}, ReadKeys: []string{"CLUSTER_ENDPOINT"}},
			"stage x reads CLUSTER_ENDPOINT"},
		{"written by nobody", &Definition{StageName: "x", ReadKeys: []string{"NOPE"}}, "stage x reads NOPE"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewGraph([]Stage{net, eks, tc.reader}, WithInputKeys(isInput))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("NewGraph: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("NewGraph error %v, want one containing %q", err, tc.wantErr)
			}
			// Without the option the contract is not checked (test stubs).
			if _, err := NewGraph([]Stage{net, eks, tc.reader}); err != nil {
				t.Fatalf("NewGraph without inputs: %v", err)
			}
		})
	}
}
