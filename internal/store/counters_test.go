package store

import (
	"reflect"
	"testing"
)

// TestCountersCoverStats checks that every cumulative field of Stats has a
// counter of the same name (Stats copies them by name) and the reverse.
func TestCountersCoverStats(t *testing.T) {
	st, c := reflect.TypeFor[Stats](), reflect.TypeFor[counters]()
	for f := range st.Fields() {
		if f.Type.Kind() != reflect.Uint64 || f.Name == "FlushMillis" {
			continue
		}
		if _, ok := c.FieldByName(f.Name); !ok {
			t.Errorf("Stats.%s has no counter", f.Name)
		}
	}
	for f := range c.Fields() {
		if g, ok := st.FieldByName(f.Name); f.IsExported() && (!ok || g.Type.Kind() != reflect.Uint64) {
			t.Errorf("counter %s has no uint64 field in Stats", f.Name)
		}
	}
}
