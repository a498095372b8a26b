package drain

import (
	"testing"
	"time"
)

func TestDedup(t *testing.T) {
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	d := newDedup(3, time.Minute)
	for i, id := range []string{"a", "b", "c"} {
		d.add(id, t0.Add(time.Duration(i)*time.Second))
	}
	steps := []struct {
		op   string // "seen" or "add"
		id   string
		at   time.Duration
		want bool // for seen
		len  int
	}{
		{"seen", "a", 3 * time.Second, true, 3},
		{"seen", "x", 3 * time.Second, false, 3},
		{"add", "d", 3 * time.Second, false, 3}, // count bound: "a" forgotten
		{"seen", "a", 3 * time.Second, false, 3},
		{"seen", "b", 3 * time.Second, true, 3},
		{"seen", "b", 61 * time.Second, false, 2}, // age bound: "b" (added at 1 s) expired
		{"seen", "c", 61 * time.Second, true, 2},
		{"seen", "d", 63 * time.Second, false, 0},
		{"add", "b", 63 * time.Second, false, 1}, // an expired id can come back
		{"seen", "b", 64 * time.Second, true, 1},
	}
	for i, s := range steps {
		switch s.op {
		case "seen":
			if got := d.seen(s.id, t0.Add(s.at)); got != s.want {
				t.Errorf("step %d: seen(%q) = %v, want %v", i, s.id, got, s.want)
			}
		case "add":
			d.add(s.id, t0.Add(s.at))
		}
		if d.len() != s.len || len(d.ids) != s.len {
			t.Errorf("step %d: len = %d (map %d), want %d", i, d.len(), len(d.ids), s.len)
		}
	}
	if d.evicted != 1 {
		t.Errorf("evicted = %d, want 1", d.evicted)
	}
}

// len returns the number of remembered ids.
func (d *dedup) len() int { return d.n }
