package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/dynometrics/dynometrics/internal/input/otlp"
)

func TestOTLPConfig(t *testing.T) {
	tests := map[string]struct {
		attrs, names string
		want         string // "" means valid
		parsed       []string
	}{
		"defaults":          {"heroku.dyno.name", "full", "", []string{"heroku.dyno.name"}},
		"several, spaces":   {" heroku.dyno.name , service.instance.id", "type", "", []string{"heroku.dyno.name", "service.instance.id"}},
		"none":              {"", "", "", nil},
		"empty item":        {"heroku.dyno.name,,x", "full", "OTLP_SOURCE_ATTRIBUTES=", nil},
		"unknown dyno mode": {"heroku.dyno.name", "short", `FIR_DYNO_NAMES="short": unknown mode; want full (web-5d8f7c9b4-x2k9p) or type (web)`, nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := viewConfig() // a valid configuration
			c.Fir.SourceAttributes, c.Fir.DynoNames = tc.attrs, tc.names
			err := c.validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected errors %v", err)
				}
				got, _ := c.Fir.Attributes()
				if !reflect.DeepEqual(got, tc.parsed) {
					t.Errorf("attributes %q, want %q", got, tc.parsed)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Count(err.Error(), "\n") != 0 {
				t.Fatalf("errors %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestOTLPDefaults: the defaults envconfig applies are the receiver's documented ones.
func TestOTLPDefaults(t *testing.T) {
	f, _ := reflect.TypeOf(otlp.Env{}).FieldByName("SourceAttributes")
	if d := f.Tag.Get("default"); d != otlp.DefaultSourceAttributes {
		t.Errorf("OTLP_SOURCE_ATTRIBUTES default %q, otlp.DefaultSourceAttributes %q", d, otlp.DefaultSourceAttributes)
	}
	f, _ = reflect.TypeOf(otlp.Env{}).FieldByName("DynoNames")
	if d := f.Tag.Get("default"); d != otlp.DynoFull.String() {
		t.Errorf("FIR_DYNO_NAMES default %q, want %q", d, otlp.DynoFull.String())
	}
}

// TestOTLPWiring: with PORT the receiver shares the drain's mux and
// credentials, and its self-metrics are registered.
func TestOTLPWiring(t *testing.T) {
	cfg := testConfig("http://127.0.0.1:1")
	cfg.Drain.Port, cfg.Fir.SourceAttributes, cfg.Fir.DynoNames = "0", "heroku.dyno.name", "type"
	w, err := newWorker(cfg, options{stdout: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = w.closeOTLP(context.Background())
		for _, o := range w.outlets {
			_ = o.Close(context.Background())
		}
	}()
	for _, path := range []string{otlp.LogsPath, otlp.MetricsPath} {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(`{}`))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		w.mux.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("%s without credentials: %d, want 401", path, rec.Code)
		}
		req.SetBasicAuth(testUser, testPass)
		rec = httptest.NewRecorder()
		w.mux.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Errorf("%s with the drain's credentials: %d, want 200", path, rec.Code)
		}
	}
	for _, name := range []string{"worker.otlp.requests", "worker.otlp.too_large", "worker.otlp.rejected", "worker.otlp.queued", "worker.otlp.lines"} {
		if w.reg.Get(name) == nil {
			t.Errorf("self-metric %s not registered", name)
		}
	}
	if got := w.otlp.Stats().Requests; got != 4 {
		t.Errorf("%d requests counted, want 4", got)
	}
}
