package appstats

import (
	"strconv"
	"sync"
	"testing"
)

// TestFold: the first MaxApps apps get counters of their own (onNew is told
// of each once, and of Other first); later apps share Other's.
func TestFold(t *testing.T) {
	var named []string
	tab := New(func(app string, _ *Counters) { named = append(named, app) })
	var wg sync.WaitGroup
	for g := range 4 { // concurrent lookups of the same apps
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range MaxApps + 20 {
				tab.For("app-" + strconv.Itoa(i)).Lines.Add(uint64(g + 1))
			}
		}()
	}
	wg.Wait()
	if len(named) != MaxApps+1 || named[0] != Other {
		t.Fatalf("onNew called for %d names (first %q), want Other then %d apps", len(named), named[0], MaxApps)
	}
	if tab.Apps() != MaxApps {
		t.Errorf("Apps() = %d, want %d", tab.Apps(), MaxApps)
	}
	first, last := tab.For(named[1]), tab.For("app-"+strconv.Itoa(MaxApps+19))
	if got := first.Lines.Load(); got != 1+2+3+4 {
		t.Errorf("%s lines = %d, want 10", named[1], got)
	}
	if last != &tab.other {
		t.Error("an app beyond MaxApps has counters of its own")
	}
	if got := tab.other.Lines.Load(); got != 20*10 {
		t.Errorf("Other lines = %d, want 200 (20 apps × 10)", got)
	}
	var sum uint64
	n := 0
	tab.Each(func(_ string, c *Counters) { n++; sum += c.Lines.Load() })
	if n != MaxApps+1 || sum != (MaxApps+20)*10 {
		t.Errorf("Each: %d entries, %d lines; want %d, %d", n, sum, MaxApps+1, (MaxApps+20)*10)
	}
}

// TestReasonNames: every reason has its self-metric name.
func TestReasonNames(t *testing.T) {
	seen := map[string]bool{}
	for r := range NumReasons {
		n := r.String()
		if n == "" || n == "unknown" || seen[n] {
			t.Errorf("reason %d named %q", r, n)
		}
		seen[n] = true
	}
}
