package promtest

import (
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
