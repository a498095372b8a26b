package budget

import (
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
)

func TestTakeRelease(t *testing.T) {
	b := New(100)
	for name, tc := range map[string]struct {
		take []int64
		want []bool
		used int64
	}{
		"within":     {take: []int64{40, 60}, want: []bool{true, true}, used: 100},
		"past bound": {take: []int64{60, 41, 40}, want: []bool{true, false, true}, used: 100},
		"zero":       {take: []int64{0, 100}, want: []bool{true, true}, used: 100},
	} {
		t.Run(name, func(t *testing.T) {
			for i, n := range tc.take {
				if got := b.Take(n); got != tc.want[i] {
					t.Errorf("Take(%d) = %v, want %v", n, got, tc.want[i])
				}
			}
			if st := b.Stats(); st.Used != tc.used {
				t.Errorf("used %d, want %d", st.Used, tc.used)
			}
			b.Release(tc.used)
		})
	}
	if st := b.Stats(); st.Used != 0 || st.Refused != 1 || st.Peak != 100 {
		t.Errorf("stats %+v, want used 0, refused 1, peak 100", st)
	}
}

// TestReaderTakesAsBytesArrive: a reader takes what it read, not what the
// body will be; past the bound it fails with ErrExhausted and Release gives
// everything back.
func TestReaderTakesAsBytesArrive(t *testing.T) {
	b := New(1000)
	r1 := b.Reader(strings.NewReader(strings.Repeat("a", 600)))
	if _, err := io.ReadAll(r1); err != nil {
		t.Fatal(err)
	}
	if r1.Taken() != 600 || b.Stats().Used != 600 {
		t.Fatalf("taken %d, used %d, want 600", r1.Taken(), b.Stats().Used)
	}
	r2 := b.Reader(strings.NewReader(strings.Repeat("b", 600)))
	_, err := io.ReadAll(r2)
	if !errors.Is(err, ErrExhausted) {
		t.Fatalf("second reader: %v, want ErrExhausted", err)
	}
	if !r2.Take(0) || r2.Take(500) {
		t.Error("Take past the bound succeeded")
	}
	r2.Release()
	r1.Release()
	r1.Release()
	if st := b.Stats(); st.Used != 0 || st.Refused < 2 {
		t.Errorf("stats %+v, want used 0 and the refusals counted", st)
	}
}

func TestConcurrentNeverPastBound(t *testing.T) {
	b := New(1 << 10)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 10000 {
				if b.Take(100) {
					if u := b.Stats().Used; u > 1<<10 {
						t.Errorf("used %d past the bound", u)
					}
					b.Release(100)
				}
			}
		})
	}
	wg.Wait()
	if st := b.Stats(); st.Used != 0 || st.Peak > 1<<10 {
		t.Errorf("stats %+v", st)
	}
}

func TestNilBudgetUnbounded(t *testing.T) {
	var b *Budget
	r := b.Reader(strings.NewReader("abc"))
	if got, err := io.ReadAll(r); err != nil || string(got) != "abc" || !b.Take(1<<40) {
		t.Fatalf("nil budget: %q %v", got, err)
	}
	r.Release()
}
