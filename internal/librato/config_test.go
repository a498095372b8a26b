package librato_test

import (
	"strings"
	"testing"

	"github.com/dynometrics/dynometrics/internal/librato"
)

// TestEnvValidate: Librato's rules, tags included, apply only when
// LIBRATO_TOKEN enables the outlet; every error names the variable.
func TestEnvValidate(t *testing.T) {
	on := librato.Env{User: "ops@example.com", Token: token, URL: librato.DefaultURL, API: librato.APIMetrics}
	upper := map[string]string{"Region": "US East"}
	tests := map[string]struct {
		env  librato.Env
		tags map[string]string
		want string // "" for no error
	}{
		"off, tags Librato refuses": {librato.Env{API: "v2"}, map[string]string{"dyno": "x", "a": "x*y"}, ""},
		"user without token":        {librato.Env{User: "ops@example.com"}, nil, "LIBRATO_USER is set but LIBRATO_TOKEN is not"},
		"on":                        {on, upper, ""},
		"on, dyno tag":              {on, map[string]string{"dyno": "x"}, `METRICS_TAGS: for Librato: tag "dyno" is set from each series`},
		"on, bad value":             {on, map[string]string{"a": "x*y"}, `METRICS_TAGS: for Librato: tag "a": value "x*y" may only hold`},
		"on, case duplicates":       {on, map[string]string{"a": "x", "A": "y"}, `tag "a" given twice, ignoring case`},
		"on, bad API":               {librato.Env{User: "u", Token: token, API: "v2"}, nil, "LIBRATO_API: unknown API"},
		"on, token alone":           {librato.Env{Token: token, API: librato.APIMetrics}, nil, "LIBRATO_TOKEN is set without LIBRATO_USER"},
		"on, token alone tagged":    {librato.Env{Token: token, API: librato.APIMeasurements}, nil, ""},
		"on, URL":                   {librato.Env{User: "u", Token: token, URL: "ftp://x.example"}, nil, `LIBRATO_URL: scheme "ftp" is not http or https`},
	}
	for name, tc := range tests {
		got := ""
		if err := tc.env.Validate(tc.tags); err != nil {
			got = err.Error()
		}
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) || strings.Contains(got, token) {
			t.Errorf("%s: error %q, want one containing %q (and never the token)", name, got, tc.want)
		}
	}
}
