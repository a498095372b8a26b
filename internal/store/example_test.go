package store_test

import (
	"context"
	"fmt"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/store"
)

// Example wires a Store the way the worker does: hand the aggregator's
// partials over every couple of seconds, let Run flush the partitions this
// process leads into the outlets, and release the leases at shutdown.
func Example() {
	agg, _ := aggregate.New(aggregate.Config{Resolution: time.Minute})
	st, err := store.Open(store.Config{
		URL:        "rediss://:password@redis.example.com:6380", // REDIS_URL
		Resolution: time.Minute, Grace: 10 * time.Second,
		Outlets: []string{"librato"},
		Deliver: func(b *aggregate.Bucket, skip func(outlet string) bool) {
			if !skip("librato") {
				b.Done("librato", nil) // a real outlet calls Done once it has settled b
			}
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go st.Run(ctx, time.Second)
	go func() {
		for range time.Tick(2 * time.Second) {
			_ = st.Handover(ctx, agg.TakeStates()) // errors are counted; partials are kept
		}
	}()
	// … at SIGTERM:
	cancel()
	_ = st.Handover(context.Background(), agg.TakeStates())
	_ = st.Release(context.Background())
}

// ExampleOpen shows that configuration errors name the variable and never
// carry the password.
func ExampleOpen() {
	_, err := store.Open(store.Config{URL: "http://user:s3cret@host:6379", Resolution: time.Minute,
		Deliver: func(*aggregate.Bucket, func(string) bool) {}})
	fmt.Println(err)
	// Output: store: invalid configuration: REDIS_URL: scheme "http" is not redis or rediss
}
