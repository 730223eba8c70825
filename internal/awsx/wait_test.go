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

func TestWaitPolicyFor(t *testing.T) {
	rds := WaitPolicy{MinDelay: 30 * time.Second, MaxDelay: 60 * time.Second, Timeout: 90 * time.Minute}
	tests := []struct {
		name string
		run  WaitPolicy
		want WaitPolicy
	}{
		{"the wait's own bounds, poll delay capped", WaitPolicy{}, WaitPolicy{MinDelay: 30 * time.Second, MaxDelay: 30 * time.Second, Timeout: 90 * time.Minute}},
		{"a run's shorter policy wins", WaitPolicy{MinDelay: 10 * time.Millisecond, MaxDelay: 50 * time.Millisecond, Timeout: time.Minute},
			WaitPolicy{MinDelay: 10 * time.Millisecond, MaxDelay: 50 * time.Millisecond, Timeout: time.Minute}},
		{"only the timeout set", WaitPolicy{Timeout: 5 * time.Minute}, WaitPolicy{MinDelay: 30 * time.Second, MaxDelay: 30 * time.Second, Timeout: 5 * time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.run.For(rds); got != tt.want {
				t.Errorf("For = %+v; want %+v", got, tt.want)
			}
		})
	}
}
