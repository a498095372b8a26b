package envcfg

import (
	"errors"
	"strings"
	"testing"
	"time"
)

type spec struct {
	Addr   string        `envconfig:"T_ADDR" accepts:"host:port" desc:"where"`
	URL    string        `envconfig:"T_URL" accepts:"an http(s) URL" desc:"to"`
	Token  string        `envconfig:"T_TOKEN" secret:"true" accepts:"a token" desc:"auth"`
	Every  time.Duration `envconfig:"T_EVERY" default:"10s" accepts:"a duration" desc:"how often"`
	Count  int           `envconfig:"T_COUNT" default:"3" accepts:"1 or more" desc:"how many"`
	Hidden string        `ignored:"true"`
}

func TestVars(t *testing.T) {
	vars := Vars(&spec{})
	var names []string
	for _, v := range vars {
		names = append(names, v.Name)
	}
	if got := strings.Join(names, " "); got != "T_ADDR T_URL T_TOKEN T_EVERY T_COUNT" {
		t.Fatalf("Vars: %s", got)
	}
	if v := vars[3]; v.Default != "10s" || v.Accepts != "a duration" || v.Desc != "how often" || v.Secret {
		t.Errorf("T_EVERY: %+v", v)
	}
	if !vars[2].Secret {
		t.Errorf("T_TOKEN is not secret")
	}
}

func TestLoadParseErrors(t *testing.T) {
	tests := map[string]struct {
		env  map[string]string
		want string
	}{
		"duration": {map[string]string{"T_EVERY": "often"}, `T_EVERY="often": not a duration; want a duration`},
		"int":      {map[string]string{"T_COUNT": "many"}, `T_COUNT="many": not a whole number; want 1 or more`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var s spec
			err := Load(&s)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	var s spec
	if err := Load(&s); err != nil || s.Every != 10*time.Second || s.Count != 3 {
		t.Fatalf("defaults: %v %+v", err, s)
	}
}

// TestExplain: each *Error becomes one line with the value (as set, else
// as held; a secret's never, a URL's without credentials or query) and what
// the variable accepts; other errors are kept.
func TestExplain(t *testing.T) {
	t.Setenv("T_URL", "https://user:s3cret@example.com/x?key=s3cret")
	s := spec{Addr: "nowhere", Token: "s3cret", Every: time.Minute}
	err := errors.Join(
		Bad("T_ADDR", "not host:port"),
		errors.Join(Bad("T_URL", "no good"), Bad("T_TOKEN", "too short")),
		Bad("T_EVERY", "too long"),
		errors.New("T_ADDR and T_URL go together"),
		Bad("T_OTHER", "unknown"),
	)
	got := Explain(err, &s).Error()
	want := strings.Join([]string{
		`T_ADDR="nowhere": not host:port; want host:port`,
		`T_URL="https://example.com/x": no good; want an http(s) URL`,
		`T_TOKEN (value not shown): too short; want a token`,
		`T_EVERY="1m0s": too long; want a duration`,
		`T_ADDR and T_URL go together`,
		`T_OTHER: unknown`,
	}, "\n")
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if Explain(nil, &s) != nil {
		t.Errorf("Explain(nil) is not nil")
	}
}

func TestChecks(t *testing.T) {
	tests := map[string]struct {
		err  error
		want string // "" for none
	}{
		"port ok":         {Port("P", "8080"), ""},
		"port range":      {Port("P", "70000"), "P: not a port number"},
		"addr":            {ListenAddr("A", "x"), "A: not host:port"},
		"addr host":       {ListenAddr("A", "a b:1"), `A: host "a b" is neither`},
		"addr ok":         {ListenAddr("A", ":6514"), ""},
		"none of":         {NoneOf("U", "a:b", ":"), `U: contains ':'`},
		"file":            {File("F", "/nonexistent/x"), "F: cannot be read"},
		"url scheme":      {URL("U", "ftp://x", false), `U: scheme "ftp" is not http or https`},
		"url bare":        {URL("U", "x.example/y", false), "U: no http:// or https:// in front"},
		"url credentials": {URL("U", "https://a:b@x", false), "U: credentials in the URL"},
		"url base query":  {URL("U", "https://x/?a=1", true), "U: a base URL has no query or fragment"},
		"url query ok":    {URL("U", "https://x/?a=1", false), ""},
		"together":        {Together("A", "1", "B", "", "for x"), "A is set but B is not: they go together for x"},
		"together other":  {Together("A", "", "B", "1", "for x"), "B is set but A is not"},
		"together ok":     {Together("A", "", "B", "", "for x"), ""},
	}
	for name, tc := range tests {
		switch {
		case tc.want == "" && tc.err != nil:
			t.Errorf("%s: unexpected %v", name, tc.err)
		case tc.want != "" && (tc.err == nil || !strings.HasPrefix(tc.err.Error(), tc.want)):
			t.Errorf("%s: %v, want %q", name, tc.err, tc.want)
		}
	}
}
