package view

import (
	"slices"
	"testing"
)

func TestSortMetrics(t *testing.T) {
	tests := map[string]struct{ in, want []string }{
		"the demo app: counters before timer statistics": {
			in: []string{"http.handler.health.count", "http.handler.health.max", "http.handler.health.perc95",
				"http.requests", "http.handler.work.median", "http.handler.work.perc95", "http.status.2xx", "memory_rss"},
			want: []string{"http.requests", "http.status.2xx", "memory_rss",
				"http.handler.health.count", "http.handler.health.max", "http.handler.health.perc95",
				"http.handler.work.median", "http.handler.work.perc95"},
		},
		"a .count or .max without a .perc95 sibling is an ordinary metric": {
			in:   []string{"z.perc95", "jobs.count", "a.max", "b"},
			want: []string{"a.max", "b", "jobs.count", "z.perc95"},
		},
		"only names": {in: []string{"c", "a", "b"}, want: []string{"a", "b", "c"}},
		"none":       {in: nil, want: nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := slices.Clone(tc.in)
			sortMetrics(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("sortMetrics(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
