package aggregate

import (
	"errors"
	"math"
	"reflect"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/dynometrics/dynometrics/internal/metric"
)

// t0 is a bucket boundary: 2024-05-01T12:00:00Z.
var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// at returns t0 plus d seconds (fractions allowed).
func at(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }

func cnt(name, source string, v float64, sec float64) metric.Measurement {
	return metric.Measurement{Name: name, Source: source, Kind: metric.Counter, Value: v, Time: at(sec)}
}

func smp(name, source string, v float64, unit string, sec float64) metric.Measurement {
	return metric.Measurement{Name: name, Source: source, Kind: metric.Sample, Value: v, Unit: unit, Time: at(sec)}
}

func msr(name, source string, v float64, unit string, sec float64) metric.Measurement {
	return metric.Measurement{Name: name, Source: source, Kind: metric.Measure, Value: v, Unit: unit, Time: at(sec)}
}

// newTest returns an Aggregator with a clock fixed at t0 (unless cfg sets one).
func newTest(t testing.TB, cfg Config) *Aggregator {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return t0 }
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return a
}

func TestAggregateKinds(t *testing.T) {
	tests := map[string]struct {
		in   []metric.Measurement
		want []*Bucket
	}{
		"counter sums": {
			in: []metric.Measurement{cnt("req", "web.1", 1, 1), cnt("req", "web.1", 2, 30), cnt("req", "web.1", 3.5, 59.999)},
			want: []*Bucket{{Start: t0, Period: time.Minute, Series: []Series{
				{Name: "req", Source: "web.1", Kind: metric.Counter, Count: 3, Sum: 6.5},
			}}},
		},
		"sample last by timestamp": {
			in: []metric.Measurement{smp("mem", "web.1", 1, "MB", 5), smp("mem", "web.1", 2, "MB", 50), smp("mem", "web.1", 3, "MB", 20)},
			want: []*Bucket{{Start: t0, Period: time.Minute, Series: []Series{
				{Name: "mem", Source: "web.1", Unit: "MB", Kind: metric.Sample, Count: 3, Last: 2},
			}}},
		},
		"sample tie: later arrival wins": {
			in: []metric.Measurement{smp("mem", "web.1", 2, "", 50), smp("mem", "web.1", 4, "", 50), smp("mem", "web.1", 1, "", 10)},
			want: []*Bucket{{Start: t0, Period: time.Minute, Series: []Series{
				{Name: "mem", Source: "web.1", Kind: metric.Sample, Count: 3, Last: 4},
			}}},
		},
		"measure statistics": {
			in: []metric.Measurement{msr("lat", "web.1", 5, "ms", 1), msr("lat", "web.1", 1, "ms", 40), msr("lat", "web.1", 9, "ms", 10), msr("lat", "web.1", 3, "ms", 20)},
			want: []*Bucket{{Start: t0, Period: time.Minute, Series: []Series{
				// sorted 1 3 5 9: median rank ceil(2)=2 → 3; p95 rank ceil(3.8)=4 → 9.
				{Name: "lat", Source: "web.1", Unit: "ms", Kind: metric.Measure, Count: 4, Sum: 18, Min: 1, Max: 9, SumSquares: 116, Last: 1, Median: 3, P95: 9, P99: 9},
			}}},
		},
		"measure single negative value": {
			in: []metric.Measurement{msr("delta", "", -2.5, "", 0)},
			want: []*Bucket{{Start: t0, Period: time.Minute, Series: []Series{
				{Name: "delta", Kind: metric.Measure, Count: 1, Sum: -2.5, Min: -2.5, Max: -2.5, SumSquares: 6.25, Last: -2.5, Median: -2.5, P95: -2.5, P99: -2.5},
			}}},
		},
		"sources are separate series, sorted by name then source": {
			in: []metric.Measurement{cnt("b", "web.2", 1, 0), cnt("b", "web.1", 2, 0), cnt("a", "worker.1", 3, 0), cnt("a", "", 4, 0)},
			want: []*Bucket{{Start: t0, Period: time.Minute, Series: []Series{
				{Name: "a", Source: "", Kind: metric.Counter, Count: 1, Sum: 4},
				{Name: "a", Source: "worker.1", Kind: metric.Counter, Count: 1, Sum: 3},
				{Name: "b", Source: "web.1", Kind: metric.Counter, Count: 1, Sum: 2},
				{Name: "b", Source: "web.2", Kind: metric.Counter, Count: 1, Sum: 1},
			}}},
		},
		"buckets by the measurement's own timestamp, oldest first": {
			in: []metric.Measurement{cnt("req", "web.1", 1, 120), cnt("req", "web.1", 2, -1), cnt("req", "web.1", 4, 60), cnt("req", "web.1", 8, 0)},
			want: []*Bucket{
				{Start: at(-60), Period: time.Minute, Series: []Series{{Name: "req", Source: "web.1", Kind: metric.Counter, Count: 1, Sum: 2}}},
				{Start: t0, Period: time.Minute, Series: []Series{{Name: "req", Source: "web.1", Kind: metric.Counter, Count: 1, Sum: 8}}},
				{Start: at(60), Period: time.Minute, Series: []Series{{Name: "req", Source: "web.1", Kind: metric.Counter, Count: 1, Sum: 4}}},
				{Start: at(120), Period: time.Minute, Series: []Series{{Name: "req", Source: "web.1", Kind: metric.Counter, Count: 1, Sum: 1}}},
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a := newTest(t, Config{})
			a.Add(tc.in)
			got := a.Flush(at(3600))
			if !reflect.DeepEqual(withoutStates(t, got), tc.want) {
				t.Errorf("Flush:\n got %s\nwant %s", dump(got), dump(tc.want))
			}
			if s := a.Stats(); s.Added != uint64(len(tc.in)) || s.OpenSeries != 0 || s.BucketsFlushed != uint64(len(tc.want)) {
				t.Errorf("Stats = %+v", s)
			}
		})
	}
}

func dump(bs []*Bucket) string {
	var s string
	for _, b := range bs {
		s += "\n  " + b.Start.Format(time.RFC3339) + " " + b.Period.String()
		for _, x := range b.Series {
			s += "\n    " + fmtSeries(x)
		}
	}
	return s
}

func fmtSeries(x Series) string {
	return x.Name + "/" + x.Source + " " + x.Kind.String() + " " + x.Unit +
		" count=" + f(float64(x.Count)) + " sum=" + f(x.Sum) + " min=" + f(x.Min) + " max=" + f(x.Max) +
		" ssq=" + f(x.SumSquares) + " last=" + f(x.Last) + " p50=" + f(x.Median) + " p95=" + f(x.P95) + " p99=" + f(x.P99)
}

func f(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func TestFlushGrace(t *testing.T) {
	tests := map[string]struct {
		grace   time.Duration
		now     float64 // seconds after t0
		buckets int
	}{
		"during the bucket":            {now: 30, buckets: 0},
		"at the bucket's end":          {now: 60, buckets: 0},
		"one second before end+grace":  {now: 69, buckets: 0},
		"a nanosecond before deadline": {now: 69.999999999, buckets: 0},
		"at end+grace":                 {now: 70, buckets: 1},
		"long after":                   {now: 500, buckets: 1},
		"custom grace 30s, before":     {grace: 30 * time.Second, now: 89, buckets: 0},
		"custom grace 30s, at":         {grace: 30 * time.Second, now: 90, buckets: 1},
		"no grace, at the end":         {grace: -1, now: 60, buckets: 1},
		"no grace, before the end":     {grace: -1, now: 59.5, buckets: 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a := newTest(t, Config{Grace: tc.grace})
			a.Add([]metric.Measurement{cnt("req", "web.1", 1, 10)})
			if got := a.Flush(at(tc.now)); len(got) != tc.buckets {
				t.Fatalf("Flush(t0+%gs) returned %d buckets, want %d", tc.now, len(got), tc.buckets)
			}
		})
	}
}

func TestLate(t *testing.T) {
	a := newTest(t, Config{})
	a.Add([]metric.Measurement{cnt("req", "web.1", 1, 10), cnt("req", "web.1", 1, 65)})
	got := a.Flush(at(70))
	if len(got) != 1 || got[0].Start != t0 || got[0].Series[0].Sum != 1 {
		t.Fatalf("first Flush = %s", dump(got))
	}
	// Late for the flushed bucket, on time for the open one; a bucket that
	// never had data but whose deadline passed (t0-60s) is late too.
	a.Add([]metric.Measurement{cnt("req", "web.1", 100, 59), cnt("req", "web.2", 100, 0), cnt("req", "web.1", 100, -30), cnt("req", "web.1", 2, 119)})
	if s := a.Stats(); s.Late != 3 || s.Added != 3 {
		t.Errorf("Stats after late lines: Late=%d Added=%d, want 3 and 3", s.Late, s.Added)
	}
	got = a.Flush(at(130))
	want := []*Bucket{{Start: at(60), Period: time.Minute, Series: []Series{{Name: "req", Source: "web.1", Kind: metric.Counter, Count: 2, Sum: 3}}}}
	if !reflect.DeepEqual(withoutStates(t, got), want) {
		t.Errorf("second Flush:\n got %s\nwant %s", dump(got), dump(want))
	}
	// Flushing with an earlier time changes nothing and never re-sends.
	if got := a.Flush(at(70)); got != nil {
		t.Errorf("Flush with an earlier now = %s, want nil", dump(got))
	}
}

func TestTimeBounds(t *testing.T) {
	tests := map[string]struct {
		cfg        Config
		sec        float64   // measurement time, seconds after the clock (t0)
		abs        time.Time // or this time, if useAbs
		useAbs     bool
		future     uint64
		old        uint64
		wantAdded  uint64
		wantBucket time.Time
	}{
		"now":                          {sec: 0, wantAdded: 1, wantBucket: t0},
		"default MaxFuture (res+1m)":   {sec: 120, wantAdded: 1, wantBucket: at(120)},
		"beyond default MaxFuture":     {sec: 121, future: 1},
		"custom MaxFuture, within":     {cfg: Config{MaxFuture: 10 * time.Second}, sec: 10, wantAdded: 1, wantBucket: t0},
		"custom MaxFuture, beyond":     {cfg: Config{MaxFuture: 10 * time.Second}, sec: 11, future: 1},
		"far future (year 3000)":       {abs: t0.AddDate(976, 0, 0), useAbs: true, future: 1},
		"default MaxAge (1h), at edge": {sec: -3600, wantAdded: 1, wantBucket: at(-3600)},
		"older than MaxAge":            {sec: -3601, old: 1},
		"custom MaxAge, beyond":        {cfg: Config{MaxAge: 5 * time.Minute}, sec: -301, old: 1},
		"far past (year 1000)":         {abs: t0.AddDate(-1024, 0, 0), useAbs: true, old: 1},
		"zero time":                    {useAbs: true, old: 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a := newTest(t, tc.cfg)
			m := cnt("req", "web.1", 1, tc.sec)
			if tc.useAbs {
				m.Time = tc.abs
			}
			a.Add([]metric.Measurement{m})
			s := a.Stats()
			if s.DroppedFuture != tc.future || s.DroppedOld != tc.old || s.Added != tc.wantAdded {
				t.Fatalf("Stats = %+v, want future %d, old %d, added %d", s, tc.future, tc.old, tc.wantAdded)
			}
			got := a.FlushAll()
			if tc.wantAdded == 0 {
				if got != nil {
					t.Fatalf("FlushAll = %s, want nil", dump(got))
				}
				return
			}
			if len(got) != 1 || !got[0].Start.Equal(tc.wantBucket) {
				t.Fatalf("FlushAll = %s, want one bucket at %s", dump(got), tc.wantBucket)
			}
		})
	}
}

func TestConflicts(t *testing.T) {
	a := newTest(t, Config{})
	a.Add([]metric.Measurement{
		msr("lat", "web.1", 5, "ms", 0),
		cnt("lat", "web.1", 1, 1),        // other kind: dropped
		msr("lat", "web.1", 0.5, "s", 2), // other unit: dropped
		msr("lat", "web.2", 0.5, "s", 2), // other source: its own series
		cnt("lat", "web.1", 1, 61),       // next bucket: starts afresh
	})
	if s := a.Stats(); s.DroppedConflict != 2 || s.Added != 3 {
		t.Fatalf("Stats = %+v, want DroppedConflict 2, Added 3", s)
	}
	got := a.FlushAll()
	want := []*Bucket{
		{Start: t0, Period: time.Minute, Series: []Series{
			{Name: "lat", Source: "web.1", Unit: "ms", Kind: metric.Measure, Count: 1, Sum: 5, Min: 5, Max: 5, SumSquares: 25, Last: 5, Median: 5, P95: 5, P99: 5},
			{Name: "lat", Source: "web.2", Unit: "s", Kind: metric.Measure, Count: 1, Sum: 0.5, Min: 0.5, Max: 0.5, SumSquares: 0.25, Last: 0.5, Median: 0.5, P95: 0.5, P99: 0.5},
		}},
		{Start: at(60), Period: time.Minute, Series: []Series{{Name: "lat", Source: "web.1", Kind: metric.Counter, Count: 1, Sum: 1}}},
	}
	if !reflect.DeepEqual(withoutStates(t, got), want) {
		t.Errorf("FlushAll:\n got %s\nwant %s", dump(got), dump(want))
	}
}

func TestInvalid(t *testing.T) {
	a := newTest(t, Config{})
	a.Add([]metric.Measurement{
		cnt("a", "", math.NaN(), 0), cnt("a", "", math.Inf(1), 0), msr("a", "", math.Inf(-1), "", 0),
		{Name: "a", Kind: 0, Value: 1, Time: t0}, {Name: "a", Kind: 9, Value: 1, Time: t0},
		cnt("a", "", 1, 0),
	})
	if s := a.Stats(); s.DroppedInvalid != 3 || s.DroppedOutOfRange != 2 || s.Added != 1 {
		t.Fatalf("Stats = %+v, want DroppedInvalid 3, DroppedOutOfRange 2, Added 1", s)
	}
}

// TestOutlierKeepsSeries is issue 13's sixth reproduction on the aggregation
// side: count#…=1e126 beside good values. The outlier is dropped and counted;
// the series keeps its good values, with statistics an outlet can carry.
func TestOutlierKeepsSeries(t *testing.T) {
	a := newTest(t, Config{})
	a.Add([]metric.Measurement{
		cnt("hits", "web.1", 1, 0), cnt("hits", "web.1", 1e126, 1), cnt("hits", "web.1", 2, 2),
		msr("lat", "web.1", 5, "ms", 0), msr("lat", "web.1", -1e101, "ms", 1), msr("lat", "web.1", 1e100, "ms", 2),
	})
	got := a.FlushAll()
	if len(got) != 1 || len(got[0].Series) != 2 {
		t.Fatalf("FlushAll = %s", dump(got))
	}
	hits, lat := got[0].Series[0], got[0].Series[1]
	if hits.Sum != 3 || hits.Count != 2 {
		t.Errorf("hits = %s, want sum 3 of 2 values", fmtSeries(hits))
	}
	if lat.Count != 2 || lat.Min != 5 || lat.Max != 1e100 {
		t.Errorf("lat = %s, want 5 and 1e100", fmtSeries(lat))
	}
	if s := a.Stats(); s.DroppedOutOfRange != 2 || s.Added != 4 {
		t.Fatalf("Stats = %+v, want DroppedOutOfRange 2, Added 4", s)
	}
}

func TestFlushAll(t *testing.T) {
	a := newTest(t, Config{})
	if got := a.FlushAll(); got != nil {
		t.Fatalf("FlushAll of an empty aggregator = %s", dump(got))
	}
	a.Add([]metric.Measurement{cnt("a", "web.1", 1, 0), cnt("a", "web.1", 2, 61), cnt("a", "web.1", 4, 119)})
	if got := a.Flush(at(65)); got != nil {
		t.Fatalf("Flush before any deadline = %s", dump(got))
	}
	got := a.FlushAll()
	want := []*Bucket{
		{Start: t0, Period: time.Minute, Series: []Series{{Name: "a", Source: "web.1", Kind: metric.Counter, Count: 1, Sum: 1}}},
		{Start: at(60), Period: time.Minute, Series: []Series{{Name: "a", Source: "web.1", Kind: metric.Counter, Count: 2, Sum: 6}}},
	}
	if !reflect.DeepEqual(withoutStates(t, got), want) {
		t.Fatalf("FlushAll:\n got %s\nwant %s", dump(got), dump(want))
	}
	// The partial bucket was sent: more lines for it are late, never re-sent.
	a.Add([]metric.Measurement{cnt("a", "web.1", 8, 100), cnt("a", "web.1", 16, 120)})
	if s := a.Stats(); s.Late != 1 || s.OpenSeries != 1 {
		t.Fatalf("Stats = %+v, want Late 1, OpenSeries 1", s)
	}
	got = a.FlushAll()
	if len(got) != 1 || got[0].Start != at(120) || got[0].Series[0].Sum != 16 {
		t.Fatalf("second FlushAll = %s", dump(got))
	}
}

func TestConfig(t *testing.T) {
	tests := map[string]struct {
		cfg  Config
		err  bool
		want Config // checked when err is false (Now ignored)
	}{
		"defaults": {cfg: Config{}, want: Config{Resolution: time.Minute, Grace: 10 * time.Second, MaxSeries: 100000, MaxFuture: 2 * time.Minute, MaxAge: time.Hour}},
		"10s, no grace": {cfg: Config{Resolution: 10 * time.Second, Grace: -1},
			want: Config{Resolution: 10 * time.Second, MaxSeries: 100000, MaxFuture: 70 * time.Second, MaxAge: time.Hour}},
		"1s":                    {cfg: Config{Resolution: time.Second}, want: Config{Resolution: time.Second, Grace: 10 * time.Second, MaxSeries: 100000, MaxFuture: 61 * time.Second, MaxAge: time.Hour}},
		"24h":                   {cfg: Config{Resolution: 24 * time.Hour}, want: Config{Resolution: 24 * time.Hour, Grace: 10 * time.Second, MaxSeries: 100000, MaxFuture: 24*time.Hour + time.Minute, MaxAge: time.Hour}},
		"sub-second resolution": {cfg: Config{Resolution: 500 * time.Millisecond}, err: true},
		"fractional seconds":    {cfg: Config{Resolution: 1500 * time.Millisecond}, err: true},
		"does not divide a day": {cfg: Config{Resolution: 7 * time.Second}, err: true},
		"longer than a day":     {cfg: Config{Resolution: 48 * time.Hour}, err: true},
		"negative resolution":   {cfg: Config{Resolution: -time.Minute}, err: true},
		"grace beyond MaxGrace": {cfg: Config{Grace: 2 * time.Hour}, err: true},
		"negative MaxSeries":    {cfg: Config{MaxSeries: -1}, err: true},
		"negative MaxFuture":    {cfg: Config{MaxFuture: -1}, err: true},
		"negative MaxAge":       {cfg: Config{MaxAge: -1}, err: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a, err := New(tc.cfg)
			if tc.err {
				if !errors.Is(err, ErrConfig) {
					t.Fatalf("New(%+v) error = %v, want ErrConfig", tc.cfg, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			got := a.cfg
			got.Now = nil
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("config = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestConcurrentAddFlush hammers Add from several goroutines while another
// flushes with an advancing clock, then checks that every measurement was
// either flushed exactly once or counted as late.
func TestConcurrentAddFlush(t *testing.T) {
	const (
		writers = 4
		perW    = 20000
		series  = 50
	)
	a := newTest(t, Config{Resolution: time.Second, Grace: 3 * time.Second, MaxFuture: time.Hour})
	var done atomic.Bool
	var progress atomic.Int64 // the newest timestamp written, ms after t0
	var flushed []*Bucket
	var fwg sync.WaitGroup
	fwg.Add(1)
	go func() {
		// Flush at the newest timestamp seen: writers lagging behind it
		// produce late lines.
		defer fwg.Done()
		for !done.Load() {
			flushed = append(flushed, a.Flush(t0.Add(time.Duration(progress.Load())*time.Millisecond))...)
			runtime.Gosched()
		}
	}()
	var wg sync.WaitGroup
	names := make([]string, series)
	for i := range names {
		names[i] = "n" + string(rune('a'+i%26)) + string(rune('a'+i/26))
	}
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			batch := make([]metric.Measurement, 10)
			for i := 0; i < perW; i += len(batch) {
				for j := range batch {
					k := i + j
					batch[j] = metric.Measurement{Name: names[k%series], Source: "web.1", Kind: metric.Counter, Value: 1,
						Time: t0.Add(time.Duration(k) * time.Millisecond)}
				}
				a.Add(batch)
				if p := int64(i + len(batch)); p > progress.Load() {
					progress.Store(p)
				}
			}
			_ = w
		}()
	}
	wg.Wait()
	done.Store(true)
	fwg.Wait()
	flushed = append(flushed, a.FlushAll()...)

	var total float64
	var count int64
	seen := map[time.Time]bool{}
	for _, b := range flushed {
		if seen[b.Start] {
			t.Fatalf("bucket %s flushed twice", b.Start)
		}
		seen[b.Start] = true
		for _, s := range b.Series {
			total += s.Sum
			count += s.Count
		}
	}
	s := a.Stats()
	if want := float64(writers * perW); total+float64(s.Late) != want {
		t.Fatalf("flushed %g + late %d != added %g", total, s.Late, want)
	}
	if uint64(count) != s.Added || s.OpenSeries != 0 {
		t.Fatalf("flushed count %d, Stats %+v", count, s)
	}
	if len(flushed) < 2 {
		t.Errorf("only %d buckets flushed", len(flushed))
	}
	t.Logf("%d buckets, %d late", len(flushed), s.Late)
}

func TestSketchSaturated(t *testing.T) {
	a := newTest(t, Config{})
	var ms []metric.Measurement
	for i := range 1500 {
		// Magnitudes 2^-60 to 2^60: a ratio beyond what SketchMaxBins spans.
		ms = append(ms, msr("wide", "web.1", math.Ldexp(1, i%121-60), "", 0), msr("narrow", "web.1", float64(i), "", 0))
	}
	a.Add(ms)
	got := a.FlushAll()
	if s := a.Stats(); s.SketchSaturated != 1 || len(got) != 1 || got[0].Series[1].Max != 0x1p60 {
		t.Fatalf("Stats = %+v, FlushAll = %s", s, dump(got))
	}
}

// TestAddDoesNotRetain hands Add names that alias a buffer (as a zero-copy
// parser may) and overwrites the buffer afterwards.
func TestAddDoesNotRetain(t *testing.T) {
	a := newTest(t, Config{})
	buf := []byte("router.service web.1 ms")
	m := metric.Measurement{Name: unsafe.String(&buf[0], 14), Source: unsafe.String(&buf[15], 5), Unit: unsafe.String(&buf[21], 2),
		Kind: metric.Measure, Value: 1, Time: t0}
	a.Add([]metric.Measurement{m})
	copy(buf, "XXXXXXXXXXXXXXXXXXXXXXX")
	got := a.FlushAll()
	if s := got[0].Series[0]; s.Name != "router.service" || s.Source != "web.1" || s.Unit != "ms" {
		t.Fatalf("series = %q %q %q", s.Name, s.Source, s.Unit)
	}
}

// TestStateReuse checks that a series state recycled after a flush carries
// nothing over, sketch included.
func TestStateReuse(t *testing.T) {
	a := newTest(t, Config{})
	for round := range 3 {
		var ms []metric.Measurement
		n := 2000
		if round == 1 {
			n = 3
		}
		for i := range n {
			ms = append(ms, msr("lat", "web.1", float64(i+1), "ms", float64(round*60)), smp("mem", "web.1", float64(i), "", float64(round*60)))
		}
		a.Add(ms)
		got := a.Flush(at(float64(round*60 + 70)))
		if len(got) != 1 || len(got[0].Series) != 2 {
			t.Fatalf("round %d: %s", round, dump(got))
		}
		lat := got[0].Series[0]
		want := exactSeries(func() []float64 {
			vs := make([]float64, n)
			for i := range vs {
				vs[i] = float64(i + 1)
			}
			return vs
		}())
		if lat.Count != want.Count || lat.Sum != want.Sum || lat.Min != want.Min || lat.Max != want.Max ||
			math.Abs(lat.P99-want.P99) > 0.01*want.P99 || (n <= ExactLimit && lat.P99 != want.P99) {
			t.Errorf("round %d: %s, want %s", round, fmtSeries(lat), fmtSeries(want))
		}
	}
}

// withoutStates checks that flushed measure series carry their State (and the
// others none), then clears it so that buckets compare by their statistics.
func withoutStates(t *testing.T, bs []*Bucket) []*Bucket {
	t.Helper()
	for _, b := range bs {
		for i := range b.Series {
			s := &b.Series[i]
			if (s.State != nil) != (s.Kind == metric.Measure) {
				t.Errorf("series %s/%s kind %v: State set = %v", s.Name, s.Source, s.Kind, s.State != nil)
			}
			if s.State != nil && s.State.Series().Count != s.Count {
				t.Errorf("series %s/%s: State count %d, series count %d", s.Name, s.Source, s.State.Series().Count, s.Count)
			}
			s.State = nil
		}
	}
	return bs
}
