package outlet_test

import (
	"strings"
	"testing"

	"github.com/dynometrics/dynometrics/internal/outlet"
)

func TestLRU(t *testing.T) {
	l := outlet.NewLRU[string, int](3, strings.Clone)
	for i, k := range []string{"a", "b", "c"} {
		v, created := l.Get(k)
		if !created || *v != 0 {
			t.Fatalf("Get(%s) = %d, %v; want a new zero", k, *v, created)
		}
		*v = i + 1
	}
	if v, created := l.Get("a"); created || *v != 1 { // a becomes the most recent
		t.Fatalf("Get(a) = %d, %v", *v, created)
	}
	if _, created := l.Get("d"); !created { // evicts b, the least recent
		t.Fatal("d not created")
	}
	if l.Len() != 3 || l.Evicted() != 1 {
		t.Fatalf("len %d evicted %d, want 3 1", l.Len(), l.Evicted())
	}
	if l.Peek("b") != nil {
		t.Error("b was kept; want it evicted")
	}
	for k, want := range map[string]int{"a": 1, "c": 3, "d": 0} {
		if v := l.Peek(k); v == nil || *v != want {
			t.Errorf("Peek(%s) = %v, want %d", k, v, want)
		}
	}
	if v, created := l.Get("b"); !created || *v != 0 {
		t.Errorf("b came back with %d (created %v), want a new zero", *v, created)
	}
	if l.Evicted() != 2 || l.Peek("c") != nil {
		t.Errorf("evicted %d, c kept %v; want 2 and c (least recent after a's use) gone", l.Evicted(), l.Peek("c") != nil)
	}
}
