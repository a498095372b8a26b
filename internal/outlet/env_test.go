package outlet

import (
	"maps"
	"strings"
	"testing"
)

// TestParseTags: METRICS_TAGS is parsed neutrally, keeping case and
// characters any one backend would refuse; only the syntax is checked.
func TestParseTags(t *testing.T) {
	tests := map[string]struct {
		in   string
		want map[string]string
		err  string
	}{
		"empty":          {in: " ", want: nil},
		"case kept":      {in: "Region:US-East, env : Prod", want: map[string]string{"Region": "US-East", "env": "Prod"}},
		"any characters": {in: "dyno:web.1,a b:x*y", want: map[string]string{"dyno": "web.1", "a b": "x*y"}},
		"colon in value": {in: "url:a:b", want: map[string]string{"url": "a:b"}},
		"no colon":       {in: "a:b,env", err: `pair 2 "env" has no ':'`},
		"empty pair":     {in: "a:b,,c:d", err: `pair 2 "" has no ':'`},
		"empty value":    {in: "a:", err: `pair 1 "a:": empty name or value`},
		"empty name":     {in: ":x", err: `pair 1 ":x": empty name or value`},
		"control":        {in: "a:x\ty", err: "pair 1: control character"},
		"twice":          {in: "a:x,a:y", err: `pair 2: tag "a" given twice`},
		"case differs":   {in: "a:x,A:y", want: map[string]string{"a": "x", "A": "y"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseTags(tc.in)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || !maps.Equal(got, tc.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestEnvValidate(t *testing.T) {
	tests := map[string]struct {
		env  Env
		want string
	}{
		"ok":           {Env{Prefix: "us-east.prod:app_1", Tags: "a:b"}, ""},
		"prefix char":  {Env{Prefix: "my app"}, `METRICS_PREFIX: ' ' at byte 2 is not allowed`},
		"prefix long":  {Env{Prefix: strings.Repeat("a", MaxPrefixLen+1)}, "METRICS_PREFIX: 129 bytes"},
		"tags syntax":  {Env{Tags: "region"}, `METRICS_TAGS: pair 1 "region" has no ':'`},
		"both at once": {Env{Prefix: "a b", Tags: "x"}, "METRICS_PREFIX: ' ' at byte 1 is not allowed\nMETRICS_TAGS: pair 1"},
	}
	for name, tc := range tests {
		err := tc.env.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: unexpected %v", name, err)
		case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)):
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}
