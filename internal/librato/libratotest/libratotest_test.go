package libratotest

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

const (
	user  = "u@example.com"
	token = "s3cret-token"
)

func post(t *testing.T, s *Server, path, ctype, u, p, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if u != "" || p != "" {
		req.SetBasicAuth(u, p)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func gauges(n int) string {
	var b strings.Builder
	b.WriteString(`{"measure_time":1714564800,"gauges":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"name":"g%d","value":1}`, i)
	}
	b.WriteString(`]}`)
	return b.String()
}

func measurements(n int) string {
	var b strings.Builder
	b.WriteString(`{"time":1714564800,"tags":{"app":"a"},"measurements":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"name":"m%d","value":1}`, i)
	}
	b.WriteString(`]}`)
	return b.String()
}

func TestFakeMetricsAPI(t *testing.T) {
	tests := map[string]struct {
		body   string
		status int
		errStr string // substring of the error body
	}{
		"documented example": {body: `{"measure_time":1714564800,"source":"web.1",
			"gauges":[{"name":"db.latency","count":12,"sum":48.0,"min":1,"max":9,"sum_squares":290,"period":60},
			{"name":"mem","value":42,"source":"web.2"}],"counters":[{"name":"conn","value":1002}]}`, status: 200},
		"units":                    {body: `{"measure_time":1714564800,"gauges":[{"name":"a","value":1,"attributes":{"display_units_short":"ms"}}]}`, status: 200},
		"300 gauges":               {body: gauges(300), status: 200},
		"301 gauges":               {body: gauges(301), status: 400, errStr: "too many measurements in one request: 301 > 300"},
		"empty":                    {body: `{"gauges":[]}`, status: 400, errStr: "at least one"},
		"unknown top-level field":  {body: `{"measure_time":1714564800,"tags":{},"gauges":[{"name":"a","value":1}]}`, status: 400, errStr: `unknown field \"tags\"`},
		"unknown gauge field":      {body: `{"gauges":[{"name":"a","value":1,"last":2}]}`, status: 400, errStr: `unknown field \"last\"`},
		"value and count":          {body: `{"gauges":[{"name":"a","value":1,"count":1,"sum":1}]}`, status: 400, errStr: "cannot be given"},
		"count without sum":        {body: `{"gauges":[{"name":"a","count":1}]}`, status: 400, errStr: "needs a value"},
		"nothing":                  {body: `{"gauges":[{"name":"a"}]}`, status: 400, errStr: "needs a value"},
		"min without count":        {body: `{"gauges":[{"name":"a","value":1,"min":1}]}`, status: 400, errStr: "need count"},
		"zero count":               {body: `{"gauges":[{"name":"a","count":0,"sum":0}]}`, status: 400, errStr: "positive"},
		"fractional time":          {body: `{"measure_time":1714564800.5,"gauges":[{"name":"a","value":1}]}`, status: 400, errStr: "invalid JSON"},
		"bad name":                 {body: `{"gauges":[{"name":"a b","value":1}]}`, status: 400, errStr: `{"errors":{"params":{"name":["is invalid: \"a b\""]}}}`},
		"long name":                {body: `{"gauges":[{"name":"` + strings.Repeat("a", 256) + `","value":1}]}`, status: 400, errStr: "is invalid"},
		"255 name":                 {body: `{"gauges":[{"name":"` + strings.Repeat("a", 255) + `","value":1}]}`, status: 200},
		"no name":                  {body: `{"gauges":[{"value":1}]}`, status: 400, errStr: "is required"},
		"reserved source":          {body: `{"gauges":[{"name":"a","value":1,"source":"ALL"}]}`, status: 400, errStr: "reserved"},
		"reserved top-level":       {body: `{"source":"all","gauges":[{"name":"a","value":1}]}`, status: 400, errStr: "reserved"},
		"empty source":             {body: `{"gauges":[{"name":"a","value":1,"source":""}]}`, status: 400, errStr: "source"},
		"bad source":               {body: `{"gauges":[{"name":"a","value":1,"source":"web 1"}]}`, status: 400, errStr: "source"},
		"too old":                  {body: `{"measure_time":1714549199,"gauges":[{"name":"a","value":1}]}`, status: 400, errStr: `{"errors":{"params":{"measure_time":["is too far in the past"]}}}`},
		"just within 2h":           {body: `{"measure_time":1714557600,"gauges":[{"name":"a","value":1}]}`, status: 200},
		"huge value":               {body: `{"gauges":[{"name":"a","value":1e127}]}`, status: 400, errStr: "exponent"},
		"unknown attribute":        {body: `{"gauges":[{"name":"a","value":1,"attributes":{"colour":"red"}}]}`, status: 400, errStr: "unknown attribute"},
		"counter with count":       {body: `{"counters":[{"name":"a","count":1,"sum":1}]}`, status: 400, errStr: "unknown field"},
		"counter without value":    {body: `{"counters":[{"name":"a"}]}`, status: 400, errStr: "is required"},
		"zero period":              {body: `{"gauges":[{"name":"a","value":1,"period":0}]}`, status: 400, errStr: "period"},
		"not JSON":                 {body: `gauges=1`, status: 400, errStr: "invalid JSON"},
		"trailing data":            {body: `{"gauges":[{"name":"a","value":1}]} {}`, status: 400, errStr: "after"},
		"colon dash underscore ok": {body: `{"gauges":[{"name":"A:b-c_d.e","value":1,"source":"x:y-z_w.1"}]}`, status: 200},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := New(t, Options{User: user, Token: token, Now: func() time.Time { return now }})
			status, body := post(t, s, "/v1/metrics", "application/json", user, token, tc.body)
			if status != tc.status || !strings.Contains(body, tc.errStr) {
				t.Fatalf("got %d %s, want %d containing %q", status, body, tc.status, tc.errStr)
			}
			if tc.status == 200 && len(s.Measurements()) == 0 {
				t.Fatal("nothing recorded")
			}
			if tc.status != 200 && (len(s.Measurements()) != 0 || len(s.Errors()) != 1) {
				t.Fatalf("rejected request recorded %d measurements, %d errors", len(s.Measurements()), len(s.Errors()))
			}
		})
	}
}

func TestFakeMetricsRecords(t *testing.T) {
	s := New(t, Options{User: user, Token: token, Now: func() time.Time { return now }})
	status, body := post(t, s, "/v1/metrics", "application/json", user, token, `{"measure_time":1714564800,"source":"web.1",
		"gauges":[{"name":"db.latency","count":12,"sum":48.0,"min":1,"max":9,"sum_squares":290,"period":60,"attributes":{"display_units_short":"ms"}},
		{"name":"mem","value":42,"source":"web.2","measure_time":1714564740}],"counters":[{"name":"conn","value":1002}]}`)
	if status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	want := []Measurement{
		{API: "metrics", Type: "gauge", Name: "db.latency", Source: "web.1", Time: 1714564800, Period: 60, Summary: true,
			Count: 12, Sum: 48, Min: 1, Max: 9, SumSquares: 290, HasMin: true, HasMax: true, HasSS: true, Unit: "ms"},
		{API: "metrics", Type: "gauge", Name: "mem", Source: "web.2", Time: 1714564740, HasValue: true, Value: 42},
		{API: "metrics", Type: "counter", Name: "conn", Source: "web.1", Time: 1714564800, HasValue: true, Value: 1002},
	}
	got := s.Measurements()
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Fatalf("recorded\n%+v\nwant\n%+v", got, want)
	}
	if m, ok := s.Find("mem", "web.2"); !ok || m.Value != 42 {
		t.Fatalf("Find: %+v %v", m, ok)
	}
}

func TestFakeMeasurementsAPI(t *testing.T) {
	tests := map[string]struct {
		body   string
		status int
		errStr string
	}{
		"documented example": {body: `{"tags":{"app":"a"},"time":1714564800,"period":60,
			"measurements":[{"name":"req","value":5},
			{"name":"lat","count":12,"sum":48,"min":1,"max":9,"last":3,"tags":{"app":"a","dyno":"web.1"}}]}`, status: 202},
		"1000":             {body: measurements(1000), status: 202},
		"1001":             {body: measurements(1001), status: 400, errStr: "1001 > 1000"},
		"no tags":          {body: `{"time":1714564800,"measurements":[{"name":"a","value":1}]}`, status: 400, errStr: "at least one tag"},
		"bad tag name":     {body: `{"tags":{"a b":"x"},"measurements":[{"name":"a","value":1}]}`, status: 400, errStr: "invalid tag name"},
		"long tag name":    {body: `{"tags":{"` + strings.Repeat("k", 65) + `":"x"},"measurements":[{"name":"a","value":1}]}`, status: 400, errStr: "invalid tag name"},
		"bad tag value":    {body: `{"tags":{"a":"x*y"},"measurements":[{"name":"a","value":1}]}`, status: 400, errStr: "invalid value"},
		"empty tag value":  {body: `{"tags":{"a":""},"measurements":[{"name":"a","value":1}]}`, status: 400, errStr: "invalid value"},
		"null tag value":   {body: `{"tags":{"a":null},"measurements":[{"name":"a","value":1}]}`, status: 400, errStr: "invalid value null"},
		"odd tag value ok": {body: `{"tags":{"a":"x?y\\z/w v"},"measurements":[{"name":"a","value":1}]}`, status: 202},
		"sum_squares":      {body: `{"tags":{"a":"b"},"measurements":[{"name":"a","count":1,"sum":1,"sum_squares":1}]}`, status: 400, errStr: "unknown field"},
		"source field":     {body: `{"tags":{"a":"b"},"measurements":[{"name":"a","value":1,"source":"web.1"}]}`, status: 400, errStr: "unknown field"},
		"value and count":  {body: `{"tags":{"a":"b"},"measurements":[{"name":"a","value":1,"count":1,"sum":1}]}`, status: 400, errStr: "cannot be given"},
		"last alone":       {body: `{"tags":{"a":"b"},"measurements":[{"name":"a","value":1,"last":1}]}`, status: 400, errStr: "need count"},
		"too old":          {body: `{"tags":{"a":"b"},"time":1714549199,"measurements":[{"name":"a","value":1}]}`, status: 400, errStr: `{"errors":{"params":{"time":["is too far in the past"]}}}`},
		"both stddevs":     {body: `{"tags":{"a":"b"},"measurements":[{"name":"a","count":1,"sum":1,"stddev":1,"stddev_m2":1}]}`, status: 400, errStr: "only one"},
		"bad name":         {body: `{"tags":{"a":"b"},"measurements":[{"name":"é","value":1}]}`, status: 400, errStr: "is invalid"},
		"per-measure tags": {body: `{"tags":{"a b":"bad"},"measurements":[{"name":"a","value":1,"tags":{"dyno":"web.1"}}]}`, status: 202},
		"units":            {body: `{"tags":{"a":"b"},"measurements":[{"name":"a","value":1,"attributes":{"display_units_short":"ms"}}]}`, status: 202},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := New(t, Options{User: user, Token: token, Now: func() time.Time { return now }})
			status, body := post(t, s, "/v1/measurements", "application/json", user, token, tc.body)
			if status != tc.status || !strings.Contains(body, tc.errStr) {
				t.Fatalf("got %d %s, want %d containing %q", status, body, tc.status, tc.errStr)
			}
		})
	}
	t.Run("51 tags", func(t *testing.T) {
		s := New(t, Options{User: user, Token: token, Now: func() time.Time { return now }})
		var tags []string
		for i := range 51 {
			tags = append(tags, fmt.Sprintf(`"t%d":"v"`, i))
		}
		status, body := post(t, s, "/v1/measurements", "application/json", user, token,
			`{"tags":{`+strings.Join(tags, ",")+`},"measurements":[{"name":"a","value":1}]}`)
		if status != 400 || !strings.Contains(body, "51 > 50") {
			t.Fatalf("%d %s", status, body)
		}
	})
}

func TestFakeMeasurementsRecords(t *testing.T) {
	s := New(t, Options{User: user, Token: token, Now: func() time.Time { return now }})
	status, body := post(t, s, "/v1/measurements", "application/json", user, token, `{"tags":{"App":"A"},"time":1714564800,"period":60,
		"measurements":[{"name":"req","value":5},
		{"name":"lat","count":12,"sum":48,"min":1,"max":9,"last":3,"tags":{"app":"a","dyno":"WEB.1"}}]}`)
	if status != 202 {
		t.Fatalf("%d %s", status, body)
	}
	want := []Measurement{
		{API: "measurements", Name: "req", Tags: map[string]string{"app": "a"}, Time: 1714564800, Period: 60, HasValue: true, Value: 5},
		{API: "measurements", Name: "lat", Tags: map[string]string{"app": "a", "dyno": "web.1"}, Time: 1714564800, Period: 60,
			Summary: true, Count: 12, Sum: 48, Min: 1, Max: 9, Last: 3, HasMin: true, HasMax: true, HasLast: true},
	}
	if got := s.Measurements(); fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Fatalf("recorded\n%+v\nwant\n%+v", got, want)
	}
}

func TestFakeRequestChecks(t *testing.T) {
	ok := `{"gauges":[{"name":"a","value":1}]}`
	tests := map[string]struct {
		path, ctype, user, pass string
		appOptics               bool
		status                  int
	}{
		"ok":                        {"/v1/metrics", "application/json", user, token, false, 200},
		"charset ok":                {"/v1/metrics", "application/json; charset=utf-8", user, token, false, 200},
		"wrong token":               {"/v1/metrics", "application/json", user, "nope", false, 401},
		"wrong user":                {"/v1/metrics", "application/json", "x", token, false, 401},
		"no auth":                   {"/v1/metrics", "application/json", "", "", false, 401},
		"appoptics form off":        {"/v1/measurements", "application/json", token, "", false, 401},
		"appoptics form on":         {"/v1/measurements", "application/json", token, "", true, 202},
		"appoptics form not legacy": {"/v1/metrics", "application/json", token, "", true, 401},
		"form content type":         {"/v1/metrics", "application/x-www-form-urlencoded", user, token, false, 415},
		"no content type":           {"/v1/metrics", "", user, token, false, 415},
		"unknown path":              {"/v1/metric", "application/json", user, token, false, 404},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := New(t, Options{User: user, Token: token, AppOptics: tc.appOptics, Now: func() time.Time { return now }})
			body := ok
			if tc.path == "/v1/measurements" {
				body = measurements(1)
			}
			status, resp := post(t, s, tc.path, tc.ctype, tc.user, tc.pass, body)
			if status != tc.status {
				t.Fatalf("got %d %s, want %d", status, resp, tc.status)
			}
			if status >= 400 && !strings.HasPrefix(resp, `{"errors":{"request":[`) {
				t.Fatalf("error body %s is not Librato-shaped", resp)
			}
		})
	}
	t.Run("GET", func(t *testing.T) {
		s := New(t, Options{User: user, Token: token})
		resp, err := s.Client().Get(s.URL + "/v1/metrics")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 405 {
			t.Fatalf("GET: %d", resp.StatusCode)
		}
	})
}

func TestFakeFaults(t *testing.T) {
	s := New(t, Options{User: user, Token: token, Now: func() time.Time { return now }})
	s.Inject(1, Fault{Status: 500})
	s.Inject(1, Fault{Status: 429})
	s.Inject(1, Fault{Status: 503})
	s.Inject(1, Fault{Drop: true})
	s.Inject(1, Fault{Delay: 20 * time.Millisecond})
	body := gauges(1)
	for _, want := range []int{500, 429, 503} {
		status, resp := post(t, s, "/v1/metrics", "application/json", user, token, body)
		if status != want {
			t.Fatalf("got %d %s, want %d", status, resp, want)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/v1/metrics", strings.NewReader(body))
	if _, err := s.Client().Do(req); err == nil {
		t.Fatal("dropped connection: no error")
	}
	start := time.Now()
	if status, _ := post(t, s, "/v1/metrics", "application/json", user, token, body); status != 200 {
		t.Fatalf("delayed request: %d", status)
	}
	if time.Since(start) < 20*time.Millisecond {
		t.Fatal("no delay")
	}
	want := Counts{Requests: 5, Accepted: 1, Faults: 4}
	if c := s.Counts(); c != want {
		t.Fatalf("counts %+v, want %+v", c, want)
	}
	if len(s.Measurements()) != 1 {
		t.Fatalf("%d recorded", len(s.Measurements()))
	}
}

func TestFake429Headers(t *testing.T) {
	s := New(t, Options{User: user, Token: token})
	s.Inject(1, Fault{Status: 429})
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/v1/metrics", strings.NewReader(gauges(1)))
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-Librato-RateLimit-Agg") == "" || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("headers %v", resp.Header)
	}
}
