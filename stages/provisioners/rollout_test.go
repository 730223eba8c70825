package provisioners

import (
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/coderctl/coderctl/configs"
)

// TestStrategy: a quarter of the replicas (at least one) may be replaced at
// once, so the rollout never depends on surge room; a quarter more surge.
func TestStrategy(t *testing.T) {
	for replicas, wantUnavailable := range map[int32]int{1: 1, 2: 1, 3: 1, 4: 1, 7: 1, 8: 2, 14: 3, 20: 5, 40: 10} {
		s := Strategy(replicas)
		ru := s.RollingUpdate
		if ru == nil || ru.MaxUnavailable.IntValue() != wantUnavailable || ru.MaxSurge.String() != "25%" {
			t.Errorf("%d replicas: %+v, want maxUnavailable %d, maxSurge 25%%", replicas, ru, wantUnavailable)
		}
	}
}

// TestGracePeriodIsTheValuesFiles: the plan's "up to N s" for a draining
// build is the grace period coderctl installs.
func TestGracePeriodIsTheValuesFiles(t *testing.T) {
	var v struct {
		ProvisionerDaemon struct {
			TerminationGracePeriodSeconds int `json:"terminationGracePeriodSeconds"`
		} `json:"provisionerDaemon"`
	}
	if err := yaml.Unmarshal(configs.Read(ValuesFile), &v); err != nil {
		t.Fatal(err)
	}
	if got := v.ProvisionerDaemon.TerminationGracePeriodSeconds; got != GracePeriodSeconds {
		t.Errorf("%s sets terminationGracePeriodSeconds %d, GracePeriodSeconds is %d", ValuesFile, got, GracePeriodSeconds)
	}
}
