package main

import (
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
		"unknown dyno mode": {"heroku.dyno.name", "short", `FIR_DYNO_NAMES="short": want full or type`, nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := Config{OTLPSourceAttributes: tc.attrs, FirDynoNames: tc.names}
			errs := c.validateOTLP()
			if tc.want == "" {
				if len(errs) != 0 {
					t.Fatalf("unexpected errors %v", errs)
				}
				got, _ := otlpSourceAttributes(tc.attrs)
				if !reflect.DeepEqual(got, tc.parsed) {
					t.Errorf("attributes %q, want %q", got, tc.parsed)
				}
				return
			}
			if len(errs) != 1 || !strings.Contains(errs[0].Error(), tc.want) {
				t.Fatalf("errors %v, want one containing %q", errs, tc.want)
			}
		})
	}
}

// TestOTLPDefaults: the defaults envconfig applies are the receiver's documented ones.
func TestOTLPDefaults(t *testing.T) {
	f, _ := reflect.TypeOf(Config{}).FieldByName("OTLPSourceAttributes")
	if d := f.Tag.Get("default"); d != otlp.DefaultSourceAttributes {
		t.Errorf("OTLP_SOURCE_ATTRIBUTES default %q, otlp.DefaultSourceAttributes %q", d, otlp.DefaultSourceAttributes)
	}
	f, _ = reflect.TypeOf(Config{}).FieldByName("FirDynoNames")
	if d := f.Tag.Get("default"); d != otlp.DynoFull.String() {
		t.Errorf("FIR_DYNO_NAMES default %q, want %q", d, otlp.DynoFull.String())
	}
}
