package librato_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/librato"
	"github.com/dynometrics/dynometrics/internal/librato/libratotest"
	"github.com/dynometrics/dynometrics/internal/metric"
	"github.com/dynometrics/dynometrics/internal/outlet"
	"github.com/dynometrics/dynometrics/internal/testproc"
)

const (
	user  = "ops@example.com"
	token = "tok-9f8e7d6c5b4a"
)

var (
	t0  = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC) // 1714564800
	now = t0.Add(90 * time.Second)
)

func clock() time.Time { return now }

// fixture is a real-shaped bucket: one series of each kind plus the edge cases
// of names and sources.
func fixture(start time.Time) *aggregate.Bucket {
	return &aggregate.Bucket{Start: start, Period: time.Minute, Series: []aggregate.Series{
		{Name: "db.latency", Source: "DATABASE", Unit: "ms", Kind: metric.Measure, Count: 3, Sum: 30, Min: 5, Max: 15,
			SumSquares: 350, Last: 10, Median: 10, P95: 15, P99: 15},
		{Name: "jobs", Source: "worker.1", Kind: metric.Counter, Count: 2, Sum: 7},
		{Name: "mem", Source: "all", Unit: "MB", Kind: metric.Sample, Count: 1, Last: 21.22},
		{Name: "requests", Kind: metric.Counter, Count: 12, Sum: 12},
		{Name: "router service", Source: "web.1", Kind: metric.Counter, Count: 1, Sum: 0.5},
	}}
}

func newOutlet(t *testing.T, cfg librato.Config) (*librato.Outlet, *testproc.LimitedBuffer) {
	t.Helper()
	logs := &testproc.LimitedBuffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	if cfg.Queue.Now == nil {
		cfg.Queue.Now = clock
	}
	if cfg.Queue.Backoff == nil {
		cfg.Queue.Backoff = func(int) time.Duration { return time.Millisecond }
	}
	o, err := librato.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return o, logs
}

func closeOutlet(t *testing.T, o *librato.Outlet) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := o.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// render prints recorded measurements one per line, sorted, for exact comparison.
func render(ms []libratotest.Measurement) string {
	var lines []string
	for _, m := range ms {
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s", m.Type, m.Name)
		if m.API == "metrics" {
			fmt.Fprintf(&b, " source=%q", m.Source)
		} else {
			keys := make([]string, 0, len(m.Tags))
			for k := range m.Tags {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Fprintf(&b, " %s=%s", k, m.Tags[k])
			}
		}
		fmt.Fprintf(&b, " t=%d p=%d", m.Time, m.Period)
		if m.HasValue {
			fmt.Fprintf(&b, " value=%v", m.Value)
		}
		if m.Summary {
			fmt.Fprintf(&b, " count=%d sum=%v min=%v max=%v", m.Count, m.Sum, m.Min, m.Max)
			if m.HasSS {
				fmt.Fprintf(&b, " ss=%v", m.SumSquares)
			}
			if m.HasLast {
				fmt.Fprintf(&b, " last=%v", m.Last)
			}
		}
		if m.Unit != "" {
			fmt.Fprintf(&b, " unit=%s", m.Unit)
		}
		lines = append(lines, b.String())
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func TestOutletMetricsAPI(t *testing.T) {
	srv := libratotest.New(t, libratotest.Options{User: user, Token: token, Now: clock})
	o, _ := newOutlet(t, librato.Config{User: user, Token: token, URL: srv.URL, Prefix: "us-east.prod."})
	o.Write(fixture(t0))
	closeOutlet(t, o)
	want := strings.Join([]string{
		`gauge us-east.prod.db.latency source="DATABASE" t=1714564800 p=60 count=3 sum=30 min=5 max=15 ss=350 unit=ms`,
		`gauge us-east.prod.db.latency.median source="DATABASE" t=1714564800 p=60 value=10 unit=ms`,
		`gauge us-east.prod.db.latency.perc95 source="DATABASE" t=1714564800 p=60 value=15 unit=ms`,
		`gauge us-east.prod.db.latency.perc99 source="DATABASE" t=1714564800 p=60 value=15 unit=ms`,
		`gauge us-east.prod.jobs source="worker.1" t=1714564800 p=60 value=7`,
		`gauge us-east.prod.mem source="_all" t=1714564800 p=60 value=21.22 unit=MB`,
		`gauge us-east.prod.requests source="" t=1714564800 p=60 value=12`,
		`gauge us-east.prod.router_service source="web.1" t=1714564800 p=60 value=0.5`,
	}, "\n")
	if got := render(srv.Measurements()); got != want {
		t.Fatalf("recorded:\n%s\nwant:\n%s", got, want)
	}
	st := o.Stats()
	if st.Buckets != 1 || st.Series != 5 || st.Measurements != 8 || st.Batches != 1 || st.Queue.Sent != 1 || st.Queue.SentMeasurements != 8 {
		t.Fatalf("stats %+v", st)
	}
}

func TestOutletMeasurementsAPI(t *testing.T) {
	tests := map[string]struct {
		user string
		tags map[string]string
		want []string
	}{
		"tags": {user: user, tags: map[string]string{"region": "us-east", "App": "MyApp"}, want: []string{
			` db.latency app=myapp dyno=database region=us-east t=1714564800 p=60 count=3 sum=30 min=5 max=15 last=10 unit=ms`,
			` db.latency.median app=myapp dyno=database region=us-east t=1714564800 p=60 value=10 unit=ms`,
			` db.latency.perc95 app=myapp dyno=database region=us-east t=1714564800 p=60 value=15 unit=ms`,
			` db.latency.perc99 app=myapp dyno=database region=us-east t=1714564800 p=60 value=15 unit=ms`,
			` jobs app=myapp dyno=worker.1 region=us-east t=1714564800 p=60 value=7`,
			` mem app=myapp dyno=all region=us-east t=1714564800 p=60 value=21.22 unit=MB`,
			` requests app=myapp region=us-east t=1714564800 p=60 value=12`,
			` router_service app=myapp dyno=web.1 region=us-east t=1714564800 p=60 value=0.5`,
		}},
		"no tags, appoptics auth": {want: []string{
			` db.latency dyno=database t=1714564800 p=60 count=3 sum=30 min=5 max=15 last=10 unit=ms`,
			` db.latency.median dyno=database t=1714564800 p=60 value=10 unit=ms`,
			` db.latency.perc95 dyno=database t=1714564800 p=60 value=15 unit=ms`,
			` db.latency.perc99 dyno=database t=1714564800 p=60 value=15 unit=ms`,
			` jobs dyno=worker.1 t=1714564800 p=60 value=7`,
			` mem dyno=all t=1714564800 p=60 value=21.22 unit=MB`,
			` requests dyno=none t=1714564800 p=60 value=12`,
			` router_service dyno=web.1 t=1714564800 p=60 value=0.5`,
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			srv := libratotest.New(t, libratotest.Options{User: user, Token: token, AppOptics: true, Now: clock})
			o, _ := newOutlet(t, librato.Config{User: tc.user, Token: token, URL: srv.URL + "/", API: librato.APIMeasurements, Tags: tc.tags})
			o.Write(fixture(t0))
			closeOutlet(t, o)
			if got, want := render(srv.Measurements()), strings.Join(tc.want, "\n"); got != want {
				t.Fatalf("recorded:\n%s\nwant:\n%s", got, want)
			}
			if c := srv.Counts(); c.Accepted != 1 || c.Rejected != 0 {
				t.Fatalf("counts %+v", c)
			}
		})
	}
}

// bigBucket has n series of mixed kinds over 10 dynos.
func bigBucket(start time.Time, n int) *aggregate.Bucket {
	b := &aggregate.Bucket{Start: start, Period: time.Minute}
	for i := range n {
		s := aggregate.Series{Name: fmt.Sprintf("metric.%05d", i), Source: fmt.Sprintf("web.%d", i%10+1), Count: 1, Sum: float64(i), Last: float64(i)}
		switch i % 3 {
		case 0:
			s.Kind = metric.Counter
		case 1:
			s.Kind = metric.Sample
		default:
			s.Kind, s.Min, s.Max, s.SumSquares, s.Median, s.P95, s.P99, s.Unit = metric.Measure, 1, 2, 3, 1, 2, 2, "ms"
		}
		b.Series = append(b.Series, s)
	}
	return b
}

func TestOutletBatchLimits(t *testing.T) {
	tests := map[string]struct {
		api           string
		series        int
		batches, meas int64
	}{
		// 1000 series: 334 counters + 333 samples + 333 measures×4 = 1999 measurements.
		"metrics":      {api: librato.APIMetrics, series: 1000, batches: 7, meas: 1999},
		"measurements": {api: librato.APIMeasurements, series: 1000, batches: 2, meas: 1999},
		"one series":   {api: librato.APIMetrics, series: 1, batches: 1, meas: 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			srv := libratotest.New(t, libratotest.Options{User: user, Token: token, Now: clock})
			o, _ := newOutlet(t, librato.Config{User: user, Token: token, URL: srv.URL, API: tc.api})
			o.Write(bigBucket(t0, tc.series))
			closeOutlet(t, o)
			st := o.Stats()
			if st.Batches != tc.batches || st.Measurements != tc.meas || st.Queue.SentMeasurements != tc.meas {
				t.Fatalf("stats %+v", st)
			}
			if got := int64(len(srv.Measurements())); got != tc.meas {
				t.Fatalf("%d recorded, want %d", got, tc.meas)
			}
			if c := srv.Counts(); c.Rejected != 0 {
				t.Fatalf("rejected: %v", srv.Errors())
			}
		})
	}
}

func TestOutletFaultsNothingLostOrDuplicated(t *testing.T) {
	for _, api := range []string{librato.APIMetrics, librato.APIMeasurements} {
		t.Run(api, func(t *testing.T) {
			t.Parallel()
			srv := libratotest.New(t, libratotest.Options{User: user, Token: token, Now: clock})
			srv.Inject(2, libratotest.Fault{Status: 500})
			srv.Inject(1, libratotest.Fault{Status: 429})
			srv.Inject(1, libratotest.Fault{Drop: true})
			srv.Inject(1, libratotest.Fault{Status: 503})
			srv.Inject(1, libratotest.Fault{Delay: 2500 * time.Millisecond}) // beyond the client timeout: abandoned, not recorded
			srv.Inject(1, libratotest.Fault{Delay: 10 * time.Millisecond})
			srv.Inject(1, libratotest.Fault{Drop: true})
			o, logs := newOutlet(t, librato.Config{User: user, Token: token, URL: srv.URL, API: api,
				Timeout: 2 * time.Second, Queue: outlet.QueueConfig{Concurrency: 2}})
			var want int64
			for i := range 4 {
				b := bigBucket(t0.Add(time.Duration(i)*time.Minute), 500)
				o.Write(b)
			}
			closeOutlet(t, o)
			st := o.Stats()
			want = st.Measurements
			ms := srv.Measurements()
			if int64(len(ms)) != want || st.Queue.Dropped != 0 || st.Queue.SentMeasurements != want {
				t.Fatalf("recorded %d, encoded %d, stats %+v\n%s", len(ms), want, st, logs)
			}
			seen := map[string]bool{}
			for _, m := range ms {
				key := fmt.Sprintf("%s|%s|%v|%d", m.Name, m.Source, m.Tags, m.Time)
				if seen[key] {
					t.Fatalf("duplicate %s", key)
				}
				seen[key] = true
			}
			// 500, 500, 429, drop, 503, drop answered; the slow one made the client give up.
			if c := srv.Counts(); c.Faults != 6 || st.Queue.Failed < 6 {
				t.Fatalf("faults %+v, queue %+v", c, st.Queue)
			}
			if strings.Contains(logs.String(), token) {
				t.Fatal("token in logs")
			}
		})
	}
}

func TestOutletPermanentErrorDropsOnlyThatBatch(t *testing.T) {
	srv := libratotest.New(t, libratotest.Options{User: user, Token: token, Now: clock})
	o, logs := newOutlet(t, librato.Config{User: user, Token: token, URL: srv.URL,
		Queue: outlet.QueueConfig{Concurrency: 1, MaxAge: 24 * time.Hour}})
	o.Write(fixture(t0.Add(-3 * time.Hour))) // Librato refuses: too far in the past
	o.Write(fixture(t0))
	closeOutlet(t, o)
	st := o.Stats()
	if st.Queue.DroppedPermanent != 1 || st.Queue.DroppedMeasurements != 8 || st.Queue.Sent != 1 || st.Queue.SentMeasurements != 8 {
		t.Fatalf("stats %+v", st.Queue)
	}
	if got := len(srv.Measurements()); got != 8 {
		t.Fatalf("%d recorded", got)
	}
	l := logs.String()
	if !strings.Contains(l, `HTTP 400 Bad Request: \"{\\\"errors\\\":{\\\"params\\\":{\\\"measure_time\\\":[\\\"is too far in the past\\\"]}}}\"`) {
		t.Fatalf("log lacks the error body:\n%s", l)
	}
	if strings.Contains(l, token) || strings.Contains(l, user) {
		t.Fatalf("credentials in logs:\n%s", l)
	}
}

func TestOutletUnauthorizedKeepsData(t *testing.T) {
	srv := libratotest.New(t, libratotest.Options{User: user, Token: "the-right-token", Now: clock})
	o, logs := newOutlet(t, librato.Config{User: user, Token: token, URL: srv.URL,
		Queue: outlet.QueueConfig{Concurrency: 1, AuthLogEvery: time.Hour}})
	o.Write(fixture(t0))
	deadline := time.Now().Add(10 * time.Second)
	for srv.Counts().Rejected < 5 {
		if time.Now().After(deadline) {
			t.Fatal("no retries")
		}
		time.Sleep(time.Millisecond)
	}
	if n := strings.Count(logs.String(), "credentials refused"); n != 1 {
		t.Fatalf("%d credentials log lines, want 1:\n%s", n, logs)
	}
	srv.SetCredentials(user, token) // the operator fixes the token
	closeOutlet(t, o)
	if got := len(srv.Measurements()); got != 8 {
		t.Fatalf("%d recorded after credentials were fixed", got)
	}
	st := o.Stats().Queue
	if st.Dropped != 0 || st.Unauthorized < 5 {
		t.Fatalf("stats %+v", st)
	}
	if strings.Contains(logs.String(), token) {
		t.Fatal("token in logs")
	}
}

func TestNewValidates(t *testing.T) {
	tests := map[string]struct {
		cfg  librato.Config
		want string
	}{
		"no token":       {librato.Config{User: user}, "LIBRATO_TOKEN is empty"},
		"no user legacy": {librato.Config{Token: token}, "LIBRATO_TOKEN is set without LIBRATO_USER"},
		"bad api":        {librato.Config{User: user, Token: token, API: "v2"}, "LIBRATO_API: unknown API"},
		"creds in url":   {librato.Config{User: user, Token: token, URL: "https://me:pw@example.com"}, "LIBRATO_URL: credentials in the URL"},
		"no scheme":      {librato.Config{User: user, Token: token, URL: "metrics-api.librato.com"}, "LIBRATO_URL: no http:// or https:// in front"},
		"query":          {librato.Config{User: user, Token: token, URL: "https://x.example/?a=1"}, "LIBRATO_URL: a base URL has no query"},
		"unparsable url": {librato.Config{User: user, Token: token, URL: "https://x.example/%zz"}, "LIBRATO_URL: not a URL"},
		"dyno tag":       {librato.Config{User: user, Token: token, Tags: map[string]string{"dyno": "x"}}, `tag "dyno" is set from each series`},
		"bad tag value":  {librato.Config{User: user, Token: token, Tags: map[string]string{"a": "x*"}}, `tag "a": value "x*"`},
		"ok legacy":      {librato.Config{User: user, Token: token}, ""},
		"ok appoptics":   {librato.Config{Token: token, API: librato.APIMeasurements, URL: "https://api.appoptics.com"}, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			o, err := librato.New(tc.cfg)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				closeOutlet(t, o)
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, librato.ErrConfig) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), token) || strings.Contains(err.Error(), ":pw@") {
				t.Fatalf("secret in error %q", err)
			}
		})
	}
}

// TestOutletHonoursRetryAfter: a 429 with Retry-After: 1 holds the batch
// back at least a second (the backoff alone is 1 ms here), then it is sent.
func TestOutletHonoursRetryAfter(t *testing.T) {
	srv := libratotest.New(t, libratotest.Options{User: user, Token: token, Now: clock})
	srv.Inject(1, libratotest.Fault{Status: http.StatusTooManyRequests})
	o, logs := newOutlet(t, librato.Config{User: user, Token: token, URL: srv.URL})
	start := time.Now()
	o.Write(fixture(t0))
	closeOutlet(t, o)
	if d := time.Since(start); d < time.Second {
		t.Fatalf("delivered after %v: the 429's Retry-After of 1s was not honoured", d)
	}
	if st := o.Stats(); st.Queue.Failed != 1 || st.Queue.Sent != 1 || len(srv.Measurements()) != 8 {
		t.Fatalf("queue %+v, %d measurements recorded; want 1 failure, then the batch of 8", st.Queue, len(srv.Measurements()))
	}
	if !strings.Contains(logs.String(), "retry after 1s") {
		t.Fatalf("the wait is not logged:\n%s", logs.String())
	}
}
