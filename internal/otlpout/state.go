package otlpout

import "strings"

// seriesKey identifies one input series across buckets.
type seriesKey struct {
	app                string // multi-app mode; "" otherwise
	name, unit, source string
}

// cloneKey copies k's strings, which point into a bucket.
func cloneKey(k seriesKey) seriesKey {
	return seriesKey{strings.Clone(k.app), strings.Clone(k.name), strings.Clone(k.unit), strings.Clone(k.source)}
}
