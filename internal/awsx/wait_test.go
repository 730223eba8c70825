package awsx

import (
	"testing"
	"time"
)

func TestWaitPolicyDelays(t *testing.T) {
	tests := []struct {
		name           string
		p              WaitPolicy
		defMin, defMax time.Duration
		wantLo, wantHi time.Duration
	}{
		{"SDK default backoff capped", WaitPolicy{}, 30 * time.Second, 120 * time.Second, 30 * time.Second, 30 * time.Second},
		{"short defaults kept", WaitPolicy{}, 5 * time.Second, 10 * time.Second, 5 * time.Second, 10 * time.Second},
		{"cap applies above a low minimum", WaitPolicy{}, 10 * time.Second, 120 * time.Second, 10 * time.Second, MaxPollDelay},
		{"policy wins", WaitPolicy{MinDelay: 100 * time.Millisecond, MaxDelay: 200 * time.Millisecond}, 30 * time.Second, 120 * time.Second, 100 * time.Millisecond, 200 * time.Millisecond},
		{"max below min is raised", WaitPolicy{MinDelay: time.Second, MaxDelay: time.Millisecond}, 30 * time.Second, 120 * time.Second, time.Second, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lo, hi := tt.p.Delays(tt.defMin, tt.defMax)
			if lo != tt.wantLo || hi != tt.wantHi {
				t.Errorf("Delays = %s, %s; want %s, %s", lo, hi, tt.wantLo, tt.wantHi)
			}
		})
	}
}
