package outlet_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/dynometrics/dynometrics/internal/outlet"
)

// printSender stands in for an HTTP sender.
type printSender struct{}

func (printSender) Send(_ context.Context, b *outlet.Batch) error {
	fmt.Printf("sent %s (%d measurements)\n", b.Body, b.N)
	return nil
}

func ExampleQueue() {
	q := outlet.NewQueue(printSender{}, outlet.QueueConfig{
		Name:        "example",
		Concurrency: 1, // strictly in order
		Logger:      slog.New(slog.DiscardHandler),
	})
	q.Push(outlet.Batch{Body: []byte(`{"gauges":[…]}`), N: 3, Time: time.Now()})
	q.Push(outlet.Batch{Body: []byte(`{"gauges":[…],"next":1}`), N: 2, Time: time.Now()})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := q.Close(ctx); err != nil {
		fmt.Println(err)
	}
	st := q.Stats()
	fmt.Println("sent", st.Sent, "batches,", st.SentMeasurements, "measurements; dropped", st.Dropped)
	// Output:
	// sent {"gauges":[…]} (3 measurements)
	// sent {"gauges":[…],"next":1} (2 measurements)
	// sent 2 batches, 5 measurements; dropped 0
}
