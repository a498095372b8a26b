package promtest

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

func TestStartQueryStop(t *testing.T) {
	srv := Start(t)
	resp, err := http.Get(srv.URL + "/-/healthy")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/-/healthy: %s", resp.Status)
	}
	got := srv.Query(t, `vector(42)`, time.Now())
	if len(got) != 1 || got[0].Value != 42 || len(got[0].Labels) != 0 {
		t.Fatalf("vector(42) = %v, want one sample 42 without labels", got)
	}
	got = srv.Query(t, `scalar(vector(1.5))`, time.Now())
	if len(got) != 1 || got[0].Value != 1.5 {
		t.Fatalf("scalar = %v, want 1.5", got)
	}
	got = srv.Query(t, `label_replace(vector(1), "b", "y", "", "") or label_replace(vector(2), "a", "x", "", "")`, time.Now())
	if len(got) != 2 || got[0].String() != `{a="x"} => 2` || got[1].String() != `{b="y"} => 1` {
		t.Fatalf("sorted vector = %v", got)
	}
	if _, err := srv.query(`sum(`, time.Now()); err == nil {
		t.Fatal("bad PromQL: no error")
	}
}

func TestLimitedBuffer(t *testing.T) {
	b := &limitedBuffer{max: 5}
	b.Write([]byte("abc"))
	b.Write([]byte("defg"))
	b.Write([]byte("h"))
	if got, want := b.String(), "abcde\n[output truncated]"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// fakeTB records Skip and Fatal instead of stopping the goroutine.
type fakeTB struct {
	testing.TB
	skipped, fatal string
}

func (f *fakeTB) Helper()           {}
func (f *fakeTB) Skip(args ...any)  { f.skipped = fmt.Sprint(args...) }
func (f *fakeTB) Fatal(args ...any) { f.fatal = fmt.Sprint(args...) }

func TestNoBinary(t *testing.T) {
	local := &fakeTB{TB: t}
	noBinary(local, false)
	if local.skipped != "promtest: no prometheus binary (apt-get install prometheus, or set PROMETHEUS_BIN)" || local.fatal != "" {
		t.Errorf("local: skipped %q fatal %q", local.skipped, local.fatal)
	}
	ci := &fakeTB{TB: t}
	noBinary(ci, true)
	if ci.fatal != "promtest: no prometheus binary (apt-get install prometheus, or set PROMETHEUS_BIN); CI=true requires it" || ci.skipped != "" {
		t.Errorf("CI: skipped %q fatal %q", ci.skipped, ci.fatal)
	}
}
