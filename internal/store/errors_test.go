package store

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/metric"
	"github.com/dynometrics/dynometrics/internal/store/redistest"
)

// TestRedisErrorIsNeverAVerdict: whatever Redis answers with an error —
// credentials refused from the start or rotated mid-run, out of memory, a
// read-only replica, a key of the wrong type — a Frame-Id check says "not
// seen" with the error (the body is kept), a hand-over keeps its partials
// (nothing counted late), and each error is counted under its reason. Once
// the fault is repaired the bucket is delivered whole, once.
func TestRedisErrorIsNeverAVerdict(t *testing.T) {
	ctx := context.Background()
	for name, tc := range map[string]struct {
		reason string
		url    func(srv *redistest.Server) string // default srv.URL
		break_ func(t *testing.T, srv *redistest.Server)
		repair func(t *testing.T, srv *redistest.Server)
	}{
		"wrong password from the start": {
			reason: ReasonAuth,
			url:    func(srv *redistest.Server) string { return "redis://:wrong@" + srv.Addr + "/0" },
			break_: func(t *testing.T, srv *redistest.Server) { must(t, srv.RequirePass("right")) },
			repair: func(t *testing.T, srv *redistest.Server) { must(t, srv.RequirePass("wrong")) },
		},
		"password rotated mid-run": {
			reason: ReasonAuth,
			break_: func(t *testing.T, srv *redistest.Server) { must(t, srv.RequirePass("rotated")) },
			repair: func(t *testing.T, srv *redistest.Server) { must(t, srv.RequirePass("")) },
		},
		"out of memory": {
			reason: ReasonOOM,
			break_: func(t *testing.T, srv *redistest.Server) {
				do(t, srv, "CONFIG", "SET", "maxmemory-policy", "noeviction")
				do(t, srv, "CONFIG", "SET", "maxmemory", "1")
			},
			repair: func(t *testing.T, srv *redistest.Server) { do(t, srv, "CONFIG", "SET", "maxmemory", "0") },
		},
		"read-only replica": {
			reason: ReasonReadOnly,
			break_: func(t *testing.T, srv *redistest.Server) { do(t, srv, "REPLICAOF", "127.0.0.1", "1") },
			repair: func(t *testing.T, srv *redistest.Server) { do(t, srv, "REPLICAOF", "NO", "ONE") },
		},
	} {
		t.Run(name, func(t *testing.T) {
			srv := redistest.Start(t)
			start := time.Now().Truncate(res).Add(-time.Hour)
			c := &clock{t: start.Add(time.Second)}
			r := &recorder{}
			url := srv.URL
			if tc.url != nil {
				url = tc.url(srv)
			}
			a, err := Open(Config{URL: url, Partitions: 4, Resolution: res, Grace: 2 * time.Second, ID: "a",
				Outlets: []string{"librato"}, Deliver: r.deliver("librato"), Now: c.now, LeaseTTL: time.Second,
				LeaseSettle: -1, OpTimeout: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { a.Close() })
			k := [2]string{"req", "web.1"}
			if tc.url == nil { // half the bucket reaches Redis before the fault
				if err := a.Handover(ctx, takeFrom(t, start, metric.Counter, map[[2]string][]float64{k: {1, 2}})); err != nil {
					t.Fatal(err)
				}
				if dup, err := a.FrameSeen(ctx, "", "before", time.Minute); dup || err != nil {
					t.Fatalf("FrameSeen before the fault: %v %v", dup, err)
				}
			}
			tc.break_(t, srv)
			dup, err := a.FrameSeen(ctx, "", "f1", time.Minute)
			if dup || err == nil {
				t.Errorf("FrameSeen during the fault: dup=%v err=%v; want not seen, with the error", dup, err)
			}
			if err := a.Handover(ctx, takeFrom(t, start, metric.Counter, map[[2]string][]float64{k: {4}})); err == nil {
				t.Error("Handover during the fault: no error")
			}
			c.set(start.Add(res + 3*time.Second))
			a.Tick(ctx) // a flush attempt during the fault delivers nothing and deletes nothing
			st := a.Stats()
			if st.FramesDuplicate != 0 || st.LateStates != 0 || st.UnsentStates != 1 || st.BucketsDone != 0 {
				t.Errorf("during the fault: FramesDuplicate %d LateStates %d UnsentStates %d BucketsDone %d; want 0 0 1 0",
					st.FramesDuplicate, st.LateStates, st.UnsentStates, st.BucketsDone)
			}
			if st.Errors[tc.reason] == 0 {
				t.Errorf("errors by reason %v: none counted under %q", st.Errors, tc.reason)
			}
			if n := len(r.buckets("librato")); n != 0 {
				t.Errorf("%d buckets delivered during the fault", n)
			}
			tc.repair(t, srv)
			a.frameDownUntil.Store(0) // the Frame-Id breaker's 5 s pause is not under test
			if dup, err := a.FrameSeen(ctx, "", "f1", time.Minute); dup || err != nil {
				t.Errorf("FrameSeen after the repair: %v %v; want a first sighting", dup, err)
			}
			if err := a.Handover(ctx, nil); err != nil {
				t.Fatalf("Handover after the repair: %v", err)
			}
			a.Tick(ctx)
			want := 7.0
			if tc.url != nil {
				want = 4
			}
			var got []string
			for _, b := range r.buckets("librato") {
				for _, s := range b.Series {
					got = append(got, fmt.Sprintf("%s/%s=%v", s.Name, s.Source, s.Sum))
				}
			}
			if w := fmt.Sprintf("[req/web.1=%v]", want); fmt.Sprint(got) != w {
				t.Errorf("delivered %v, want %s", got, w)
			}
		})
	}
}

func do(t *testing.T, srv *redistest.Server, args ...string) {
	t.Helper()
	if _, err := srv.Do(args...); err != nil {
		t.Fatalf("%s: %v", strings.Join(args, " "), err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
