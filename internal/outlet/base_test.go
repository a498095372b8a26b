package outlet_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/outlet"
)

type acceptAll struct{}

func (acceptAll) Send(context.Context, *outlet.Batch) error { return nil }

// TestBaseClosedDrops: the skeleton encodes and queues a bucket; after
// Close it drops one without encoding it, counts it in ClosedDrops and
// tells Done; an encoding failure drops the bucket and tells Done why.
func TestBaseClosedDrops(t *testing.T) {
	base := outlet.NewBase("test", acceptAll{}, outlet.QueueConfig{})
	var mu sync.Mutex
	var dones []error
	encoded := 0
	write := func(fail error) {
		b := &aggregate.Bucket{Start: time.Now(), Done: func(name string, err error) {
			if name != "test" {
				t.Errorf("Done heard outlet %q", name)
			}
			mu.Lock()
			dones = append(dones, err)
			mu.Unlock()
		}}
		base.Write(b, func(b *aggregate.Bucket) ([]outlet.Batch, error) {
			encoded++
			return []outlet.Batch{{Body: []byte("x"), N: 2, Time: b.Start}}, fail
		})
	}
	write(nil)
	write(errors.New("cannot encode"))
	if err := base.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	write(nil)
	st := base.Stats(nil)
	if st.Buckets != 3 || st.ClosedDrops != 1 || encoded != 2 || st.Queue.Sent != 1 || st.Queue.SentMeasurements != 2 {
		t.Fatalf("stats %+v, encoded %d; want 3 buckets, 1 closed drop, 2 encoded, 1 batch of 2 sent", st, encoded)
	}
	mu.Lock()
	defer mu.Unlock()
	var ok int
	var dropped []string
	for _, err := range dones {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, outlet.ErrDropped):
			dropped = append(dropped, err.Error())
		}
	}
	slices.Sort(dropped)
	if ok != 1 || strings.Join(dropped, "|") != "test: batch dropped: cannot encode|test: batch dropped: outlet closed" {
		t.Fatalf("Done got %v; want one nil, and ErrDropped for the encoding failure and the closed outlet", dones)
	}
}
