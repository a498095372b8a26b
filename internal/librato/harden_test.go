package librato_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/librato"
	"github.com/dynometrics/dynometrics/internal/librato/libratotest"
	"github.com/dynometrics/dynometrics/internal/metric"
)

// aggregated runs ms through a real Aggregator and returns its one bucket.
func aggregated(t *testing.T, ms []metric.Measurement) *aggregate.Bucket {
	t.Helper()
	a, err := aggregate.New(aggregate.Config{Now: func() time.Time { return t0.Add(30 * time.Second) }})
	if err != nil {
		t.Fatal(err)
	}
	a.Add(ms)
	bs := a.FlushAll()
	if len(bs) != 1 {
		t.Fatalf("FlushAll returned %d buckets", len(bs))
	}
	return bs[0]
}

// TestOutlierKeepsSeries is issue 13's sixth reproduction:
// measure#lat=1e64ms beside measure#lat=5ms made sum_squares (1e128) pass
// what Librato accepts, and the encoder dropped the whole series. Now the
// series goes out without sum_squares, every other statistic intact, on both
// APIs; the left-out field is counted and logged.
func TestOutlierKeepsSeries(t *testing.T) {
	m := func(v float64, sec int) metric.Measurement {
		return metric.Measurement{Name: "lat", Source: "web.1", Kind: metric.Measure, Value: v, Unit: "ms", Time: t0.Add(time.Duration(sec) * time.Second)}
	}
	b := aggregated(t, []metric.Measurement{m(5, 1), m(1e64, 2)})
	for _, api := range []string{librato.APIMetrics, librato.APIMeasurements} {
		t.Run(api, func(t *testing.T) {
			srv := libratotest.New(t, libratotest.Options{User: user, Token: token, Now: clock})
			o, logs := newOutlet(t, librato.Config{User: user, Token: token, URL: srv.URL, API: api})
			o.Write(b)
			closeOutlet(t, o)
			got, ok := srv.Find("lat", "web.1")
			if !ok || !got.Summary || got.Count != 2 || got.Sum != 1e64+5 || got.Min != 5 || got.Max != 1e64 || got.HasSS {
				t.Fatalf("lat = %+v (found %v), want count 2, sum 1e64, min 5, max 1e64, no sum_squares", got, ok)
			}
			if _, ok := srv.Find("lat.perc99", "web.1"); !ok {
				t.Fatalf("lat.perc99 not sent: %s", render(srv.Measurements()))
			}
			st := o.Stats()
			wantDropped := int64(1) // sum_squares
			if api == librato.APIMeasurements {
				wantDropped = 0 // last (1e64) is carried; no sum_squares on this API
			}
			if st.Skipped != 0 || st.Dropped != wantDropped || st.Measurements != 4 {
				t.Fatalf("stats %+v, want Skipped 0, Dropped %d, Measurements 4", st, wantDropped)
			}
			if wantDropped > 0 && !strings.Contains(logs.String(), "fields_dropped=1") {
				t.Fatalf("not logged: %s", logs)
			}
		})
	}
}

// TestOutletFieldRules: each value that cannot be carried costs only itself.
func TestOutletFieldRules(t *testing.T) {
	srv := libratotest.New(t, libratotest.Options{User: user, Token: token, Now: clock})
	o, _ := newOutlet(t, librato.Config{User: user, Token: token, URL: srv.URL})
	o.Write(&aggregate.Bucket{Start: t0, Period: time.Minute, Series: []aggregate.Series{
		{Name: "a", Kind: metric.Measure, Count: 2, Sum: 1e125, Min: -1e127, Max: 1e125, SumSquares: 1e200, Median: 1e125, P95: 2e126, P99: 2e126},
		{Name: "b", Kind: metric.Measure, Count: 2, Sum: 2e126, Min: 1, Max: 1e126, Median: 1, P95: 1, P99: 1},
		{Name: "c", Kind: metric.Counter, Count: 1, Sum: 1e126},
	}})
	closeOutlet(t, o)
	want := strings.Join([]string{
		`gauge a source="" t=1714564800 p=60 count=2 sum=1e+125 min=0 max=1e+125`,
		`gauge a.median source="" t=1714564800 p=60 value=1e+125`,
		`gauge b.median source="" t=1714564800 p=60 value=1`,
		`gauge b.perc95 source="" t=1714564800 p=60 value=1`,
		`gauge b.perc99 source="" t=1714564800 p=60 value=1`,
	}, "\n")
	if got := render(srv.Measurements()); got != want {
		t.Fatalf("recorded:\n%s\nwant:\n%s", got, want)
	}
	// a: min, sum_squares, perc95, perc99; b: the complex gauge; c: all of it.
	if st := o.Stats(); st.Dropped != 4 || st.Skipped != 1 || st.Series != 2 {
		t.Fatalf("stats %+v, want Dropped 4, Skipped 1, Series 2", st)
	}
}

// TestOutletNameCollisions is issue 13's eighth reproduction: é, ü, _ and
// \xff all become coll._, and the sources all and ALL both become _all, so
// several gauges with one name, source and time went out in one POST. Now
// the first is sent and the others counted.
func TestOutletNameCollisions(t *testing.T) {
	for _, api := range []string{librato.APIMetrics, librato.APIMeasurements} {
		t.Run(api, func(t *testing.T) {
			srv := libratotest.New(t, libratotest.Options{User: user, Token: token, Now: clock})
			o, logs := newOutlet(t, librato.Config{User: user, Token: token, URL: srv.URL, API: api})
			var series []aggregate.Series
			for _, name := range []string{"coll._", "coll.\xff", "coll.é", "coll.ü"} { // sorted, as a bucket is
				series = append(series, aggregate.Series{Name: name, Source: "web.1", Kind: metric.Counter, Count: 1, Sum: 1})
			}
			series = append(series,
				aggregate.Series{Name: "mem", Source: "ALL", Kind: metric.Sample, Count: 1, Last: 1},
				aggregate.Series{Name: "mem", Source: "all", Kind: metric.Sample, Count: 1, Last: 2},
				aggregate.Series{Name: "x", Kind: metric.Measure, Count: 1, Sum: 1, Min: 1, Max: 1, Median: 1, P95: 1, P99: 1},
				aggregate.Series{Name: "x.median", Kind: metric.Sample, Count: 1, Last: 5},
			)
			o.Write(&aggregate.Bucket{Start: t0, Period: time.Minute, Series: series})
			closeOutlet(t, o)
			seen := map[string]int{}
			for _, m := range srv.Measurements() {
				key := m.Name + " " + m.Source + " " + m.Tags["dyno"]
				seen[key]++
				if seen[key] > 1 {
					t.Errorf("%s sent twice", key)
				}
			}
			if len(seen) != 6 { // coll._, mem, x and its three percentiles
				t.Errorf("sent %v, want 6 identities", seen)
			}
			if st := o.Stats(); st.Collisions != 3+1+1 {
				t.Errorf("Collisions = %d, want 5", st.Collisions)
			}
			if !strings.Contains(logs.String(), "dropped=5") {
				t.Errorf("collisions not logged: %s", logs)
			}
		})
	}
}

// TestReceiverEchoingCredentials is issue 13's seventh reproduction: a
// receiver that echoes the Authorization header in an error body (400, 401,
// 500) had the outlet log "Basic base64(user:token)"; only the raw token was
// redacted. No form of the token reaches the log now, on either API.
func TestReceiverEchoingCredentials(t *testing.T) {
	for _, tc := range []struct{ api, user string }{{librato.APIMetrics, user}, {librato.APIMeasurements, ""}} {
		for _, code := range []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusInternalServerError} {
			t.Run(fmt.Sprint(tc.api, code), func(t *testing.T) {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.WriteHeader(code)
					fmt.Fprintf(w, `{"errors":{"request":["bad %s","token %s","%s"]}}`,
						r.Header.Get("Authorization"), token, strings.TrimPrefix(r.Header.Get("Authorization"), "Basic "))
				}))
				defer srv.Close()
				o, logs := newOutlet(t, librato.Config{User: tc.user, Token: token, URL: srv.URL, API: tc.api})
				o.Write(fixture(t0))
				// 401 and 500 are retried until Close gives up.
				ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
				defer cancel()
				err := o.Close(ctx)
				out := logs.String() + fmt.Sprint(err)
				u := tc.user
				if u == "" {
					u = token
				}
				b64 := base64.StdEncoding.EncodeToString([]byte(u + ":" + map[bool]string{true: token, false: ""}[tc.user != ""]))
				for _, leak := range []string{token, b64, strings.TrimRight(b64, "=")} {
					if strings.Contains(out, leak) {
						t.Fatalf("log holds %q:\n%s", leak, out)
					}
				}
				if !strings.Contains(out, "[redacted]") {
					t.Fatalf("the receiver's body was not logged at all:\n%s", out)
				}
			})
		}
	}
}
