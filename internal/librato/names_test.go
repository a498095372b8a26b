package librato

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dynometrics/dynometrics/internal/outlet"
)

func TestAppendMetricName(t *testing.T) {
	long := strings.Repeat("n", 300)
	tests := map[string]struct {
		prefix, name, suffix, want string
	}{
		"plain":         {"app", "router.service", "", `"app.router.service"`},
		"no prefix":     {"", "mem", "", `"mem"`},
		"invalid chars": {"us east", "a/b c", "", `"us_east.a_b_c"`},
		"multi-byte":    {"", "µs→ok", "", `"_s_ok"`},
		"suffix":        {"p", "lat", ".perc95", `"p.lat.perc95"`},
		"truncated":     {"", long, "", `"` + long[:255] + `"`},
		"truncated+sfx": {"", long, ".median", `"` + long[:248] + `.median"`},
		"quote":         {"", `a"b\c`, "", `"a_b_c"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := string(appendMetricName(nil, tc.prefix, tc.name, tc.suffix)); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestAppendSourceAndDyno(t *testing.T) {
	tests := map[string]struct{ in, source, dyno string }{
		"dyno":     {"web.1", `"web.1"`, `"web.1"`},
		"addon":    {"HEROKU_POSTGRESQL_RED", `"HEROKU_POSTGRESQL_RED"`, `"heroku_postgresql_red"`},
		"reserved": {"All", `"_all"`, `"all"`},
		"spaces":   {"run 1", `"run_1"`, `"run 1"`},
		"slashes":  {`a/b\c?`, `"a_b_c_"`, `"a/b\\c?"`},
		"long":     {strings.Repeat("s", 300), `"` + strings.Repeat("s", 255) + `"`, `"` + strings.Repeat("s", 255) + `"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := string(appendSource(nil, tc.in)); got != tc.source {
				t.Errorf("source: got %s, want %s", got, tc.source)
			}
			if got := string(appendDynoTag(nil, tc.in)); got != tc.dyno {
				t.Errorf("dyno: got %s, want %s", got, tc.dyno)
			}
		})
	}
}

// TestLowerTags: METRICS_TAGS, parsed neutrally by outlet.ParseTags, is
// lower-cased and held to Librato's rules only here.
func TestLowerTags(t *testing.T) {
	tests := map[string]struct {
		in   string
		want map[string]string
		err  string
	}{
		"empty":       {in: "", want: nil},
		"three":       {in: "region:us-east,env:prod,app:myapp", want: map[string]string{"region": "us-east", "env": "prod", "app": "myapp"}},
		"spaces":      {in: " region : us east , Env:PROD", want: map[string]string{"region": "us east", "env": "prod"}},
		"colon value": {in: "url:a:b", want: map[string]string{"url": "a:b"}},
		"bad name":    {in: "a b:x", err: `tag name "a b" may only hold`},
		"bad value":   {in: "a:x*y", err: `value "x*y" may only hold`},
		"dup":         {in: "a:x,A:y", err: `tag "a" given twice, ignoring case`},
		"dyno":        {in: "dyno:web.1", err: `tag "dyno" is set from each series`},
		"long name":   {in: strings.Repeat("k", 65) + ":v", err: "1 to 64"},
		"too many":    {in: manyTags(50), err: "50 tags, at most 49"},
		"49 ok":       {in: manyTags(49), want: nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			parsed, err := outlet.ParseTags(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := lowerTags(parsed)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrInvalidTags) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.want != nil && len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func manyTags(n int) string {
	var parts []string
	for i := range n {
		parts = append(parts, "k"+strings.Repeat("x", i)+":v")
	}
	return strings.Join(parts, ",")
}

func TestSenderClassifiesResponses(t *testing.T) {
	const token = "tok-secret-123"
	tests := map[int]struct {
		perm, unauth, ok bool
	}{
		200: {ok: true}, 201: {ok: true}, 202: {ok: true}, 204: {ok: true},
		400: {perm: true}, 404: {perm: true}, 413: {perm: true}, 415: {perm: true}, 422: {perm: true},
		401: {unauth: true}, 403: {unauth: true},
		429: {}, 500: {}, 502: {}, 503: {},
	}
	for code, tc := range tests {
		t.Run(http.StatusText(code), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if u, p, _ := r.BasicAuth(); u != "u" || p != token || r.Header.Get("Content-Type") != "application/json" {
					t.Errorf("auth %q %q, content type %q", u, p, r.Header.Get("Content-Type"))
				}
				w.WriteHeader(code)
				// A body longer than MaxErrorBody that echoes the token.
				io.WriteString(w, `{"errors":{"request":["echo `+token+`"]}}`+strings.Repeat("x", 2000))
			}))
			defer srv.Close()
			s := newSender(Config{User: "u", Token: token, API: APIMetrics, HTTPClient: srv.Client(), Timeout: DefaultTimeout}, srv.URL)
			err := s.Send(context.Background(), &outlet.Batch{Body: []byte(`{}`)})
			if tc.ok != (err == nil) || tc.perm != errors.Is(err, outlet.ErrPermanent) || tc.unauth != errors.Is(err, outlet.ErrUnauthorized) {
				t.Fatalf("HTTP %d: err %v", code, err)
			}
			if err == nil {
				return
			}
			if strings.Contains(err.Error(), token) || !strings.Contains(err.Error(), "[redacted]") {
				t.Fatalf("error %q leaks or lacks the body", err)
			}
			if len(err.Error()) > outlet.MaxErrorBody+200 {
				t.Fatalf("error body not capped: %d bytes", len(err.Error()))
			}
		})
	}
	t.Run("network", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		s := newSender(Config{User: "u@example.com", Token: token, API: APIMetrics, Timeout: DefaultTimeout}, url)
		err := s.Send(context.Background(), &outlet.Batch{Body: []byte(`{}`)})
		if err == nil || errors.Is(err, outlet.ErrPermanent) || errors.Is(err, outlet.ErrUnauthorized) {
			t.Fatalf("err %v, want a retryable error", err)
		}
		if strings.Contains(err.Error(), token) || strings.Contains(err.Error(), "u@example.com") {
			t.Fatalf("credentials in %q", err)
		}
	})
}
