package store

import (
	"context"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/store/redistest"
)

// TestFeedErrorsCounted: a feed read that fails (here the feed's key holds
// a value of the wrong type, as after an operator's mistake) is counted in
// FeedErrors, the drop the viewers see (worker.redis.feed_errors), and the
// feed goes on reading.
func TestFeedErrorsCounted(t *testing.T) {
	srv := redistest.Start(t)
	c := &clock{t: time.Now()}
	s := open(t, srv, "a", c, &recorder{}, "librato")
	if _, err := srv.Do("SET", s.feedKey(), "not a stream"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Feed(ctx, func(*aggregate.Bucket) {})
	}()
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().FeedErrors == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	if n := s.Stats().FeedErrors; n == 0 {
		t.Fatal("a failed feed read was not counted in FeedErrors")
	}
}
