package engine

import (
	"strings"
	"testing"
)

// TestReadKeysContract: with WithInputKeys, a stage may read only inputs,
// its own outputs and the outputs of stages it needs (transitively).
func TestReadKeysContract(t *testing.T) {
	isInput := func(k string) bool { return k == "AWS_REGION" }
	net := Stage{Name: "network", Writes: []string{"VPC_ID"}}
	eks := Stage{Name: "eks", Needs: []string{"network"}, Writes: []string{"CLUSTER_ENDPOINT"}}
	cases := []struct {
		name    string
		reader  Stage
		wantErr string
	}{
		{"input", Stage{Name: "x", Needs: []string{"eks"}, Reads: []string{"AWS_REGION"}}, ""},
		{"own output", Stage{Name: "x", Writes: []string{"X"}, Reads: []string{"X"}}, ""},
		{"direct need", Stage{Name: "x", Needs: []string{"eks"}, Reads: []string{"CLUSTER_ENDPOINT"}}, ""},
		{"transitive need", Stage{Name: "x", Needs: []string{"eks"}, Reads: []string{"VPC_ID"}}, ""},
		{"stage not needed", Stage{Name: "x", Needs: []string{"network"}, Reads: []string{"CLUSTER_ENDPOINT"}},
			"stage x reads CLUSTER_ENDPOINT"},
		{"written by nobody", Stage{Name: "x", Reads: []string{"NOPE"}}, "stage x reads NOPE"},
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
