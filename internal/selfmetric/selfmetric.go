// Package selfmetric publishes the worker's health: each field of a
// component's Stats struct declares, in a struct tag, the self-metric it
// feeds, and Register turns the tags into go-metrics the emitter prints.
// Adding a counter is one line: the field with its tag.
//
//	type Stats struct {
//		Requests  uint64 `metric:"requests"`                     // count# per interval
//		TooLarge  uint64 `metric:"too_large,drop"`               // a drop: README's limits name it
//		GzipBombs uint64 `metric:"gzip_bombs too_large,drop"`    // its own metric, and summed into too_large
//		Queued    int    `metric:"queued,gauge"`                 // sample# of the current value
//		Bytes     uint64 `metric:"-"`                            // not published (say why in its comment)
//		Input     input.Stats `metric:",only=lines measurements"` // a nested Stats, some of its metrics
//	}
//	selfmetric.Register(reg, "worker.otlp.", receiver.Stats)
//
// The tag is a space-separated list of names (relative to the prefix given
// to Register), then options: "gauge" (the current value; default: a
// cumulative counter, printed as its change per interval), "drop" (it counts
// data dropped, refused or cut short). Fields naming the same metric are
// summed. A time.Duration gauge is published in milliseconds. A struct
// field tagged with an empty name is descended into, with the same prefix;
// "only=…" keeps just the metrics named. Every field must carry a tag
// (Metrics fails otherwise), so that a new statistic is never silently
// unpublished.
package selfmetric

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	metrics "github.com/rcrowley/go-metrics"
)

// Metric is one self-metric a Stats type declares.
type Metric struct {
	Name   string   // full name, prefix included
	Gauge  bool     // a current value, not a cumulative count
	Drop   bool     // counts data dropped, refused or cut short
	Fields []string // the fields summed: "pkg.Stats.Field", "pkg.Stats.Nested.Field", "pkg.Embedded.Field"
	index  [][]int
}

// Metrics returns the self-metrics the struct type t declares under prefix,
// in field order. It fails on an untagged field, a bad tag, or a name
// declared both as a gauge and a counter.
func Metrics(prefix string, t reflect.Type) ([]Metric, error) {
	var out []Metric
	err := walk(t, t.String(), nil, prefix, nil, func(name string, gauge, drop bool, field string, idx []int) error {
		for i := range out {
			if m := &out[i]; m.Name == name {
				if m.Gauge != gauge {
					return fmt.Errorf("selfmetric: %s: %s declared as both a gauge and a counter", field, name)
				}
				m.Drop = m.Drop || drop
				m.Fields = append(m.Fields, field)
				m.index = append(m.index, idx)
				return nil
			}
		}
		out = append(out, Metric{Name: name, Gauge: gauge, Drop: drop, Fields: []string{field}, index: [][]int{idx}})
		return nil
	})
	return out, err
}

func walk(t reflect.Type, path string, base []int, prefix string, only []string,
	add func(name string, gauge, drop bool, field string, idx []int) error) error {
	if t.Kind() != reflect.Struct {
		return fmt.Errorf("selfmetric: %s is a %s, not a struct", path, t.Kind())
	}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		field := path + "." + f.Name
		if f.Anonymous { // an embedded Stats: its fields are named after its type
			field = f.Type.String()
		}
		idx := append(slices.Clone(base), i)
		tag, ok := f.Tag.Lookup("metric")
		if !ok {
			return fmt.Errorf("selfmetric: %s has no metric tag (use `metric:\"-\"` for one not published)", field)
		}
		if tag == "-" {
			continue
		}
		names, opts, _ := strings.Cut(tag, ",")
		var gauge, drop bool
		var sub []string
		for _, o := range strings.Split(opts, ",") {
			switch {
			case o == "", o == "counter": // counter: the default
			case o == "gauge":
				gauge = true
			case o == "drop":
				drop = true
			case strings.HasPrefix(o, "only="):
				sub = strings.Fields(strings.TrimPrefix(o, "only="))
			default:
				return fmt.Errorf("selfmetric: %s: unknown tag option %q", field, o)
			}
		}
		if names == "" {
			if f.Type.Kind() != reflect.Struct || f.Type == reflect.TypeFor[time.Duration]() {
				return fmt.Errorf("selfmetric: %s: an empty name is for a nested Stats struct", field)
			}
			if len(sub) == 0 {
				sub = only
			}
			if err := walk(f.Type, field, idx, prefix, sub, add); err != nil {
				return err
			}
			continue
		}
		switch f.Type.Kind() {
		case reflect.Int, reflect.Int64, reflect.Uint64, reflect.Uint32, reflect.Int32:
		default:
			return fmt.Errorf("selfmetric: %s: a %s cannot be published", field, f.Type)
		}
		for _, n := range strings.Fields(names) {
			if only != nil && !slices.Contains(only, n) {
				continue
			}
			if err := add(prefix+n, gauge, drop, field, idx); err != nil {
				return err
			}
		}
	}
	return nil
}

// Register registers in r, under prefix, every self-metric of the Stats type
// read returns; each reads a fresh value through read when the emitter
// prints it. It fails on an invalid tag or a name already registered.
func Register[S any](r metrics.Registry, prefix string, read func() S) error {
	ms, err := Metrics(prefix, reflect.TypeFor[S]())
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range ms {
		value := func() int64 {
			v := reflect.ValueOf(read())
			var sum int64
			for _, idx := range m.index {
				sum += int64Of(v.FieldByIndex(idx))
			}
			return sum
		}
		var metric any = Counter(value)
		if m.Gauge {
			metric = metrics.NewFunctionalGauge(value)
		}
		if err := r.Register(m.Name, metric); err != nil {
			errs = append(errs, fmt.Errorf("selfmetric: %s: %w", m.Name, err))
		}
	}
	return errors.Join(errs...)
}

func int64Of(v reflect.Value) int64 {
	if v.Type() == reflect.TypeFor[time.Duration]() {
		return time.Duration(v.Int()).Milliseconds()
	}
	if v.CanUint() {
		return int64(v.Uint())
	}
	return v.Int()
}

// Counter is a read-only go-metrics Counter backed by a cumulative
// statistic. The emitter prints a counter's change since its last emission,
// so a cumulative total becomes a per-interval count#.
type Counter func() int64

// Count implements metrics.Counter.
func (f Counter) Count() int64 { return f() }

// Clear implements metrics.Counter; a statistic is not cleared.
func (f Counter) Clear() {}

// Dec implements metrics.Counter; a statistic only its owner changes.
func (f Counter) Dec(int64) {}

// Inc implements metrics.Counter; a statistic only its owner changes.
func (f Counter) Inc(int64) {}

// Snapshot implements metrics.Counter.
func (f Counter) Snapshot() metrics.Counter { return metrics.CounterSnapshot(f()) }
