package store

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/metric"
	"github.com/dynometrics/dynometrics/internal/store/redistest"
)

// TestRedisCluster runs the store against a real three-node Redis Cluster:
// two workers hand partials over (every script keeps to one partition's
// slot), balance the 8 partitions between them, flush each its share once
// with the exact merged values; Frame-Ids, the data marker and the
// live-workers zset work across the nodes, and the partitions' keys spread
// over more than one node.
func TestRedisCluster(t *testing.T) {
	c := redistest.StartCluster(t)
	ctx := context.Background()
	start := time.Now().Truncate(res).Add(-time.Hour)
	clk := &clock{t: start.Add(time.Second)}
	r := &recorder{}
	open := func(id string) *Store {
		s, err := Open(Config{
			URL: c.URL, Cluster: true, Balance: true, Partitions: 8, Resolution: res, Grace: 2 * time.Second, ID: id,
			Outlets: []string{"librato"}, Deliver: r.deliver("librato"), Now: clk.now, LeaseTTL: time.Second,
			LeaseSettle: -1, OpTimeout: 2 * time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := open("a"), open("b")
	if err := a.Ping(ctx); err != nil {
		t.Fatal(err)
	}

	want := map[[2]string]float64{}
	for i := range 40 {
		k := [2]string{"req", "web." + strconv.Itoa(i)}
		want[k] = float64(3*i + 6)
		if err := a.Handover(ctx, takeFrom(t, start, metric.Counter, map[[2]string][]float64{k: {float64(i), 1}})); err != nil {
			t.Fatal(err)
		}
		if err := b.Handover(ctx, takeFrom(t, start, metric.Counter, map[[2]string][]float64{k: {float64(2 * i), 5}})); err != nil {
			t.Fatal(err)
		}
	}
	if st := a.Stats(); st.HandoverErrors != 0 || st.HandoverBlobs == 0 {
		t.Fatalf("a: %d hand-over errors, %d blobs stored", st.HandoverErrors, st.HandoverBlobs)
	}
	// Frame-Ids: keys without a hash tag land anywhere; one body is taken once.
	for i := range 20 {
		id := fmt.Sprintf("frame-%d", i)
		if seen, err := a.FrameSeen(ctx, "", id, time.Minute); err != nil || seen {
			t.Fatalf("a: FrameSeen(%s) = %v, %v; want false, nil", id, seen, err)
		}
		if seen, err := b.FrameSeen(ctx, "", id, time.Minute); err != nil || !seen {
			t.Fatalf("b: FrameSeen(%s) = %v, %v; want true, nil", id, seen, err)
		}
	}

	// Balance first (nothing is due yet), then flush.
	for range 3 {
		a.Tick(ctx)
		b.Tick(ctx)
	}
	if n := len(r.buckets("librato")); n != 0 {
		t.Fatalf("flushed %d buckets before the deadline", n)
	}
	clk.set(start.Add(res + 2*time.Second))
	for range 2 {
		a.Tick(ctx)
		b.Tick(ctx)
	}
	for _, s := range []*Store{a, b} {
		st := s.Stats()
		if st.Leases != 4 || st.LiveWorkers != 2 || st.BucketsFlushed != 4 || st.BucketsDone != 4 {
			t.Errorf("%s: leases %d, live %d, flushed %d, done %d; want 4, 2, 4, 4 (8 partitions, 2 workers)",
				s.cfg.ID, st.Leases, st.LiveWorkers, st.BucketsFlushed, st.BucketsDone)
		}
		for reason, n := range st.Errors {
			if n != 0 {
				t.Errorf("%s: %d Redis errors (%s)", s.cfg.ID, n, reason)
			}
		}
	}
	got := map[[2]string]float64{}
	for _, bk := range r.buckets("librato") {
		for _, s := range bk.Series {
			k := [2]string{s.Name, s.Source}
			if _, dup := got[k]; dup {
				t.Errorf("%v delivered twice", k)
			}
			got[k] = s.Sum
			if s.Totals == nil || s.Totals.Sum != s.Sum || s.Totals.Count != 4 {
				t.Errorf("%v: totals %+v, want sum %v count 4", k, s.Totals, s.Sum)
			}
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("delivered %v\nwant      %v", got, want)
	}

	// The partitions' keys (the totals hashes outlive the flush) are spread
	// over the nodes.
	holding := 0
	for _, n := range c.Nodes {
		if v, err := n.Do("DBSIZE"); err == nil && v != "0" {
			holding++
		}
	}
	if holding < 2 {
		t.Errorf("keys on %d of 3 nodes, want them spread", holding)
	}
	// A SIGTERM'd worker's partitions move at once to the other.
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
	a.Tick(ctx)
	a.Tick(ctx)
	if st := a.Stats(); st.Leases != 8 || st.LiveWorkers != 1 {
		t.Errorf("after b left: a holds %d leases, sees %d live workers; want 8, 1", st.Leases, st.LiveWorkers)
	}
}
