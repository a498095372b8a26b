package httpauth

import (
	"encoding/base64"
	"net/http/httptest"
	"testing"
)

func TestBasicCheck(t *testing.T) {
	b := NewBasic("metrics", "s3cret")
	enc := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	tests := map[string]struct {
		headers []string
		want    bool
	}{
		"canonical":             {[]string{"Basic " + enc("metrics:s3cret")}, true},
		"lower-case scheme":     {[]string{"basic " + enc("metrics:s3cret")}, true},
		"upper-case scheme":     {[]string{"BASIC " + enc("metrics:s3cret")}, true},
		"wrong password":        {[]string{"Basic " + enc("metrics:s3cre")}, false},
		"wrong user":            {[]string{"Basic " + enc("metric:s3cret")}, false},
		"password as user":      {[]string{"Basic " + enc("s3cret:metrics")}, false},
		"no header":             {nil, false},
		"two headers":           {[]string{"Basic " + enc("metrics:s3cret"), "Basic " + enc("metrics:s3cret")}, false},
		"bearer":                {[]string{"Bearer s3cret"}, false},
		"garbage":               {[]string{"Basic %%%"}, false},
		"over the stack buffer": {[]string{"Basic " + enc("metrics:s3cret") + string(make([]byte, 300))}, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/logs", nil)
			for _, h := range tc.headers {
				r.Header.Add("Authorization", h)
			}
			if got := b.Check(r); got != tc.want {
				t.Errorf("Check = %v, want %v", got, tc.want)
			}
		})
	}
	var zero Basic
	r := httptest.NewRequest("POST", "/logs", nil)
	r.SetBasicAuth("", "")
	if zero.Check(r) || (*Basic)(nil).Check(r) {
		t.Error("the zero and nil Basic accept empty credentials")
	}
}

// TestBasicCanonicalDoesNotAllocate: the drain checks every POST; the header
// Logplex sends is compared without an allocation.
func TestBasicCanonicalDoesNotAllocate(t *testing.T) {
	b := NewBasic("metrics", "s3cret")
	r := httptest.NewRequest("POST", "/logs", nil)
	r.SetBasicAuth("metrics", "s3cret")
	if n := testing.AllocsPerRun(100, func() {
		if !b.Check(r) {
			t.Fatal("refused")
		}
	}); n != 0 {
		t.Errorf("%v allocations per check, want 0", n)
	}
}

func BenchmarkBasicCheck(b *testing.B) {
	a := NewBasic("metrics", "s3cret")
	r := httptest.NewRequest("POST", "/logs", nil)
	r.SetBasicAuth("metrics", "s3cret")
	b.ReportAllocs()
	for b.Loop() {
		a.Check(r)
	}
}
