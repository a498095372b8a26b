package backoff

import (
	"testing"
	"time"
)

func TestEqualJitter(t *testing.T) {
	tests := map[string]struct {
		attempt  int
		min, max time.Duration
	}{
		"first":  {1, 50 * time.Millisecond, 100 * time.Millisecond},
		"second": {2, 100 * time.Millisecond, 200 * time.Millisecond},
		"fourth": {4, 400 * time.Millisecond, 800 * time.Millisecond},
		"capped": {20, 500 * time.Millisecond, time.Second},
		"huge":   {1 << 30, 500 * time.Millisecond, time.Second},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			for range 100 {
				d := EqualJitter(100*time.Millisecond, time.Second, tc.attempt)
				if d < tc.min || d > tc.max {
					t.Fatalf("EqualJitter(attempt %d) = %v, want in [%v, %v]", tc.attempt, d, tc.min, tc.max)
				}
			}
		})
	}
}

func TestEqualJitterZero(t *testing.T) {
	if d := EqualJitter(0, time.Second, 3); d != 0 {
		t.Fatalf("EqualJitter(0, 1s, 3) = %v, want 0", d)
	}
}
