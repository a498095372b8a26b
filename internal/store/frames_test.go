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

// TestFrameIdsRepairedAfterDataLoss: worker a takes 10 drain bodies; Redis
// loses its data (FLUSHALL, and a restart without persistence). A Logplex
// retry of one of them reaching b before a noticed the loss is taken again
// (nobody can know better); a finds the loss at its next hand-over and
// writes its Frame-Ids again, with what is left of their TTL: the retries
// of the other 9 are then recognised on b, and the one taken twice is
// counted and logged. Before, every retry after a loss was taken again.
func TestFrameIdsRepairedAfterDataLoss(t *testing.T) {
	for _, c := range []struct {
		name string
		lose func(srv *redistest.Server) error
	}{
		{"FLUSHALL", func(srv *redistest.Server) error { _, err := srv.Do("FLUSHALL"); return err }},
		{"restart", (*redistest.Server).Restart},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := redistest.Start(t)
			ctx := context.Background()
			start := time.Now().Truncate(res)
			clk := &clock{t: start.Add(time.Second)}
			a := open(t, srv, "a", clk, &recorder{}, "librato")
			b := open(t, srv, "b", clk, &recorder{}, "librato")
			// a holds a partial of an open bucket: its hand-overs read the marker.
			open := func() error {
				return a.Handover(ctx, takeFrom(t, start, metric.Counter, map[[2]string][]float64{{"req", "web.1"}: {1}}))
			}
			if err := open(); err != nil {
				t.Fatal(err)
			}
			const ttl = time.Minute
			for i := range 10 {
				if dup, err := a.FrameSeen(ctx, "", fmt.Sprint("f", i), ttl); dup || err != nil {
					t.Fatalf("f%d on a: dup %v, err %v", i, dup, err)
				}
			}
			time.Sleep(100 * time.Millisecond) // the TTL left is now below ttl
			if err := c.lose(srv); err != nil {
				t.Fatal(err)
			}
			// Before a notices: a retry of f0 on b is taken again.
			var dup bool
			var err error
			for range 3 { // after a restart, the first command may meet a dead connection
				if dup, err = b.FrameSeen(ctx, "", "f0", ttl); err == nil {
					break
				}
				time.Sleep(FramePause)
			}
			if dup || err != nil {
				t.Fatalf("f0 on b after the loss: dup %v, err %v; want taken", dup, err)
			}
			_ = open() // after a restart, the first attempt may meet a dead connection
			if err := open(); err != nil {
				t.Fatal(err)
			}
			st := a.Stats()
			if st.DataLosses != 1 || st.FramesRepaired != 9 || st.FramesTakenTwice != 1 {
				t.Errorf("data losses %d, Frame-Ids rewritten %d, taken twice %d; want 1, 9, 1", st.DataLosses, st.FramesRepaired, st.FramesTakenTwice)
			}
			for i := range 10 {
				key := a.frameKey("", fmt.Sprint("f", i))
				v, _ := srv.Do("GET", key)
				pttl, _ := srv.Do("PTTL", key)
				ms, _ := strconv.Atoi(pttl)
				if want := map[bool]string{true: "b", false: "a"}[i == 0]; v != want || ms <= 0 || ms >= int(ttl/time.Millisecond) {
					t.Errorf("%s after the repair: %q with %d ms left; want %q with less than %v left", key, v, ms, want, ttl)
				}
			}
			// Retries of the other 9 are recognised wherever they land.
			for i := 1; i < 10; i++ {
				if dup, err := b.FrameSeen(ctx, "", fmt.Sprint("f", i), ttl); !dup || err != nil {
					t.Errorf("retry of f%d on b after the repair: dup %v, err %v; want a duplicate", i, dup, err)
				}
			}
			// Repaired once: a second hand-over rewrites nothing.
			if err := open(); err != nil {
				t.Fatal(err)
			}
			if st := a.Stats(); st.FramesRepaired != 9 {
				t.Errorf("Frame-Ids rewritten %d after another hand-over, want still 9", st.FramesRepaired)
			}
		})
	}
}

// TestFrameWindowBounded: the window of Frame-Ids taken keeps the newest
// MaxFrameWindow within their TTL, oldest first, and forgets the expired.
func TestFrameWindowBounded(t *testing.T) {
	var f frames
	now := time.Unix(1000, 0)
	for i := range MaxFrameWindow + 10 {
		f.remember(now, []frameTaken{{strconv.Itoa(i), now.Add(time.Duration(i+1) * time.Millisecond)}})
	}
	got := f.remembered(now)
	if len(got) != MaxFrameWindow || got[0].key != "10" || got[len(got)-1].key != strconv.Itoa(MaxFrameWindow+9) {
		t.Fatalf("%d kept, from %s to %s; want %d, from 10 to %d", len(got), got[0].key, got[len(got)-1].key, MaxFrameWindow, MaxFrameWindow+9)
	}
	later := now.Add(time.Duration(MaxFrameWindow) * time.Millisecond)
	f.remember(later, nil)
	if got := f.remembered(later); len(got) != 10 || len(f.win) != 10 || got[0].key != strconv.Itoa(MaxFrameWindow) {
		t.Errorf("%d remembered (%d held) after most expired, want the last 10", len(got), len(f.win))
	}
}
