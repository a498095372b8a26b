package view

import (
	"slices"
	"strings"
)

// timerStats are the suffixes an emitter timer or histogram prints for one
// metric (emitter: count#NAME.count, sample#NAME.min … sample#NAME.max).
var timerStats = []string{"count", "min", "mean", "median", "perc95", "perc99", "max"}

// sortMetrics orders metric names as the page lists them: the app's own
// metrics (counters, gauges, measures) first, then the per-interval
// statistics of its timers and histograms (NAME.count, NAME.min …
// NAME.max, recognised by a NAME.perc95 among the names), each group by
// name, so that the statistics of one timer stay together and do not push
// the app's counters down the page.
func sortMetrics(names []string) {
	set := make(map[string]bool, len(names))
	for _, n := range names {
		set[n] = true
	}
	isStat := func(n string) bool {
		i := strings.LastIndexByte(n, '.')
		return i > 0 && slices.Contains(timerStats, n[i+1:]) && set[n[:i]+".perc95"]
	}
	slices.SortFunc(names, func(a, b string) int {
		sa, sb := isStat(a), isStat(b)
		switch {
		case sa == sb:
			return strings.Compare(a, b)
		case sb:
			return -1
		default:
			return 1
		}
	})
}
