package aggregate

import (
	"strings"
	"testing"
	"time"
)

// TestEnv: METRICS_RESOLUTION and METRICS_GRACE are checked by the rules New
// applies, and METRICS_GRACE=0s means no grace (Config's zero would mean
// DefaultGrace).
func TestEnv(t *testing.T) {
	tests := map[string]struct {
		env       Env
		want      string        // error; "" for none
		wantGrace time.Duration // after New's defaults
	}{
		"defaults":  {Env{Resolution: time.Minute, Grace: 10 * time.Second}, "", 10 * time.Second},
		"no grace":  {Env{Resolution: time.Minute, Grace: 0}, "", 0},
		"7s":        {Env{Resolution: 7 * time.Second, Grace: time.Second}, "METRICS_RESOLUTION: does not divide a day", 0},
		"1.5s":      {Env{Resolution: 1500 * time.Millisecond}, "METRICS_RESOLUTION: not whole seconds", 0},
		"2 days":    {Env{Resolution: 48 * time.Hour}, "METRICS_RESOLUTION: outside [1s, 24h0m0s]", 0},
		"long wait": {Env{Resolution: time.Minute, Grace: 2 * time.Hour}, "METRICS_GRACE: out of range", 0},
		"negative":  {Env{Resolution: time.Minute, Grace: -time.Second}, "METRICS_GRACE: out of range", 0},
		"no series": {Env{Resolution: time.Minute, Grace: time.Second, MaxSeries: -1}, "METRICS_MAX_SERIES: out of range", 0},
		"too many":  {Env{Resolution: time.Minute, Grace: time.Second, MaxSeries: MaxMaxSeries + 1}, "METRICS_MAX_SERIES: out of range", 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if tc.env.MaxSeries == 0 {
				tc.env.MaxSeries = DefaultMaxSeries // envconfig's default
			}
			err := tc.env.Validate()
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error %v, want %q", err, tc.want)
				}
				if _, nerr := tc.env.Config().withDefaults(); nerr == nil && strings.HasPrefix(tc.want, "METRICS_RESOLUTION") {
					t.Errorf("New accepts what Validate refuses")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c, err := tc.env.Config().withDefaults()
			if err != nil || c.Grace != tc.wantGrace {
				t.Fatalf("grace %s, %v; want %s", c.Grace, err, tc.wantGrace)
			}
		})
	}
}
