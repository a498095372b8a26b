package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/appauth"
	"github.com/dynometrics/dynometrics/internal/librato/libratotest"
	"github.com/dynometrics/dynometrics/internal/otlpout/otlptest"
	"github.com/dynometrics/dynometrics/internal/promtest"
)

// The secrets of multi-app mode in these tests: the old one verifies only.
const (
	appSecretNew = "s3cret-new-0123456789abcdef0123456789abcdef"
	appSecretOld = "s3cret-old-fedcba9876543210fedcba9876543210"
)

func keyring(t *testing.T, secrets ...string) *appauth.Keyring {
	t.Helper()
	k, err := appauth.New(secrets)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// appCorpus is what app i (0, 1) logs: the same metric names from the same
// dynos, with values of its own.
func appCorpus(i int, start time.Time) []string {
	var msgs []string
	for d, dyno := range []string{"web.1", "web.2"} {
		f := float64(10*i + d + 1) // billing: 1, 2; shop: 11, 12
		for k := range 3 {
			line := fmt.Sprintf("sample#load_avg_5m=%g count#jobs=%g measure#db.latency=%gms", f+float64(k)/4, f, f*float64(k+1))
			msgs = append(msgs, fmt.Sprintf("<190>1 %s host app %s - %s", syslogTime(start.Add(time.Duration(10+k)*time.Second)), dyno, line))
		}
	}
	return msgs
}

// appWant is one exact value expected of app i's dyno d: load_avg_5m's last
// value, jobs' sum, db.latency's median.
func appWant(i, d int) (load, jobs, median float64) {
	f := float64(10*i + d + 1)
	return f + 0.5, 3 * f, 2 * f
}

// postApp posts body to the drain as user with password and returns the
// status.
func postApp(t *testing.T, url, user, pass, frameID string, body []byte) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(user, pass)
	req.Header.Set("Content-Type", "application/logplex-1")
	req.Header.Set("Logplex-Frame-Id", frameID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// drainURLOf runs the built binary's -drain-url and returns the three lines
// it prints.
func drainURLOf(t *testing.T, bin, app, host string, env ...string) []string {
	t.Helper()
	cmd := exec.Command(bin, "-drain-url", app, "-drain-host", host)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("-drain-url %s: %v\n%s", app, err, stderr.String())
	}
	if strings.Contains(string(out)+stderr.String(), "s3cret") {
		t.Fatalf("-drain-url prints a secret:\n%s", out)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// TestMultiAppBinary runs the built worker in multi-app mode with three
// outlets at once: two apps post corpora with the same metric and dyno
// names through their own drain URLs (billing's printed by -drain-url, signed
// with the first secret; shop's an old URL of the rotated-out secret), and
// the strict fake Librato, a real Prometheus and a pdata-decoded OTLP
// receiver each keep them apart with exact values. Cross-app, malformed and
// unknown credentials get 401 and nothing of theirs arrives anywhere.
func TestMultiAppBinary(t *testing.T) {
	t.Parallel()
	prom := promtest.Start(t)
	fake := libratotest.New(t, libratotest.Options{User: testLUser, Token: testLToken})
	otlpRecv := otlptest.New(t, otlptest.Options{})
	bin := buildBinary(t, ".")
	secretEnv := "DRAIN_SECRET=" + appSecretNew + "," + appSecretOld
	p := startBinary(t, bin, "DRAIN_USER=", "DRAIN_PASSWORD=", secretEnv,
		"METRICS_PREFIX=us-east.prod.{app}", "METRICS_GRACE=1s",
		"LIBRATO_USER="+testLUser, "LIBRATO_TOKEN="+testLToken, "LIBRATO_URL="+fake.URL, "LIBRATO_API=measurements",
		"REMOTE_WRITE_URL="+prom.WriteURL, "OTEL_EXPORTER_OTLP_ENDPOINT="+otlpRecv.URL, "OTEL_SERVICE_NAME=metrics")
	base := strings.TrimSuffix(p.url, "/logs")
	host := strings.TrimPrefix(base, "http://")

	// billing: the URL -drain-url prints, signed with the first secret.
	lines := drainURLOf(t, bin, "billing", host, secretEnv)
	newK, oldK := keyring(t, appSecretNew), keyring(t, appSecretOld)
	wantURL := "https://billing:" + newK.Token("billing") + "@" + host + "/logs"
	if len(lines) != 3 || lines[0] != wantURL || lines[1] != "heroku drains:add '"+wantURL+"' -a billing" ||
		!strings.HasPrefix(lines[2], "heroku telemetry:add 'https://"+host+"' --app billing --signals logs,metrics --transport http --headers '{\"Authorization\":\""+newK.BasicHeader("billing")+"\"}'") {
		t.Fatalf("-drain-url billing printed\n%s\nwant first %s", strings.Join(lines, "\n"), wantURL)
	}
	billingPass := strings.TrimPrefix(strings.Split(lines[0], "@")[0], "https://billing:")
	shopPass := oldK.Token("shop") // an URL from before the rotation
	url := base + "/logs"

	start := time.Now().UTC().Truncate(time.Minute).Add(-2 * time.Minute)
	intruder := frame(fmt.Sprintf("<190>1 %s host app web.1 - count#intruder=1000 sample#load_avg_5m=999", syslogTime(start.Add(5*time.Second))))
	for name, tc := range map[string]struct{ user, pass string }{
		"shop's token under billing's name": {"billing", shopPass},
		"billing's token under shop's name": {"shop", billingPass},
		"unknown app":                       {"nothere", strings.Repeat("A", appauth.TokenLen)},
		"malformed app name, its own token": {"Billing", newK.Token("Billing")},
		"the secret as password":            {"billing", appSecretNew},
	} {
		if code := postApp(t, url, tc.user, tc.pass, "bad-"+name, intruder); code != http.StatusUnauthorized {
			t.Errorf("%s: %d, want 401", name, code)
		}
	}
	for i, c := range []struct{ app, pass string }{{"billing", billingPass}, {"shop", shopPass}} {
		if code := postApp(t, url, c.app, c.pass, "ok-"+c.app, frame(appCorpus(i, start)...)); code != http.StatusNoContent {
			t.Fatalf("%s: %d, want 204", c.app, code)
		}
	}
	// Fir: the OTLP receiver takes the same credentials; shop's gauge 7,
	// billing's 8, and a cross-app request refused.
	for _, c := range []struct {
		app, pass string
		v         float64
		want      int
	}{{"shop", shopPass, 7, http.StatusOK}, {"billing", billingPass, 8, http.StatusOK}, {"billing", shopPass, 999, http.StatusUnauthorized}} {
		if code := postFir(t, base, c.app, c.pass, start.Add(20*time.Second), c.v); code != c.want {
			t.Errorf("OTLP as %s: %d, want %d", c.app, code, c.want)
		}
	}
	// Both apps: load_avg_5m, jobs and db.latency's 4 measurements (summary,
	// median, perc95, perc99) per dyno, and fir.gauge of web.1.
	waitFor(t, "Librato to get both apps' bucket", 15*time.Second, func() bool { return len(fake.Measurements()) >= 2*2*6+2 })
	waitFor(t, "OTLP to get both apps' bucket", 15*time.Second, func() bool { return len(otlpRecv.Points()) >= 2*2*3+2 })
	p.term(t)
	if strings.Contains(p.stderr.String(), "s3cret") || strings.Contains(p.stderr.String(), billingPass) {
		t.Errorf("the worker logs a secret or a token:\n%s", p.stderr.String())
	}

	// Librato, tagged API: {app} in the name, an app tag.
	lib := map[string]float64{}
	for _, m := range fake.Measurements() {
		if m.Time != start.Unix() {
			continue
		}
		v := m.Value
		if m.Summary {
			v = m.Sum
		}
		lib[fmt.Sprintf("%s{app=%s,dyno=%s}", m.Name, m.Tags["app"], m.Tags["dyno"])] = v
	}
	for i, app := range []string{"billing", "shop"} {
		for d, dyno := range []string{"web.1", "web.2"} {
			load, jobs, median := appWant(i, d)
			p := "us-east.prod." + app + "."
			tags := "{app=" + app + ",dyno=" + dyno + "}"
			for name, want := range map[string]float64{p + "load_avg_5m": load, p + "jobs": jobs, p + "db.latency.median": median, p + "db.latency": 3 * median} {
				if got, ok := lib[name+tags]; !ok || !near(got, want) {
					t.Errorf("Librato %s%s = %v (sent: %v), want %v", name, tags, got, ok, want)
				}
			}
		}
	}
	for k, want := range map[string]float64{
		"us-east.prod.shop.fir.gauge{app=shop,dyno=web.1}": 7, "us-east.prod.billing.fir.gauge{app=billing,dyno=web.1}": 8,
	} {
		if got, ok := lib[k]; !ok || got != want {
			t.Errorf("Librato %s = %v (sent: %v), want %v", k, got, ok, want)
		}
	}
	if len(lib) != 2*2*6+2 {
		t.Errorf("Librato got %d measurements, want %d: %v", len(lib), 2*2*6+2, sortedKeys(lib))
	}

	// Prometheus: an app label, {app} out of the name.
	at := start.Add(time.Minute + time.Second)
	for i, app := range []string{"billing", "shop"} {
		for d, dyno := range []string{"web.1", "web.2"} {
			load, jobs, median := appWant(i, d)
			sel := fmt.Sprintf(`{app=%q,source=%q}`, app, dyno)
			for q, want := range map[string]float64{
				"us_east_prod_load_avg_5m" + sel: load, "us_east_prod_jobs_total" + sel: jobs,
				`us_east_prod_db_latency_seconds{app="` + app + `",source="` + dyno + `",quantile="0.5"}`: median / 1000,
			} {
				got := prom.Query(t, q, at)
				if len(got) != 1 || !near(got[0].Value, want) {
					t.Errorf("Prometheus %s = %v, want one sample %v", q, got, want)
				}
			}
		}
	}
	if got := prom.Query(t, `count(us_east_prod_load_avg_5m)`, at); len(got) != 1 || got[0].Value != 4 {
		t.Errorf("Prometheus: %v load_avg_5m series, want 4 (2 apps × 2 dynos)", got)
	}
	if got := prom.Query(t, `count({__name__=~".*intruder.*"})`, at); len(got) != 0 {
		t.Errorf("Prometheus has the refused requests' series: %v", got)
	}

	// OTLP: one resource per app, service.name the app.
	otl := map[string]float64{}
	for _, p := range otlpRecv.Points() {
		if p.Type == "exphist" {
			continue
		}
		otl[fmt.Sprintf("%s %s{source=%s}", p.Resource["service.name"], p.Name, p.Attrs["source"])] = p.Value
	}
	for i, app := range []string{"billing", "shop"} {
		for d, dyno := range []string{"web.1", "web.2"} {
			load, jobs, _ := appWant(i, d)
			for k, want := range map[string]float64{
				app + " us-east.prod.load_avg_5m{source=" + dyno + "}": load, app + " us-east.prod.jobs{source=" + dyno + "}": jobs,
			} {
				if got, ok := otl[k]; !ok || !near(got, want) {
					t.Errorf("OTLP %s = %v (sent: %v), want %v", k, got, ok, want)
				}
			}
		}
	}
	if otl["shop us-east.prod.fir.gauge{source=web.1}"] != 7 || otl["billing us-east.prod.fir.gauge{source=web.1}"] != 8 {
		t.Errorf("OTLP fir.gauge: %v", sortedKeys(otl))
	}
	if len(otl) != 2*2*2+2 {
		t.Errorf("OTLP got %d sums and gauges, want 10: %v", len(otl), sortedKeys(otl))
	}
}

// postFir posts one OTLP/HTTP JSON gauge fir.gauge=v of dyno web.1 at t to
// the worker's receiver as a Fir telemetry drain would, and returns the
// status.
func postFir(t *testing.T, base, user, pass string, at time.Time, v float64) int {
	t.Helper()
	body := fmt.Sprintf(`{"resourceMetrics":[{"resource":{"attributes":[{"key":"heroku.dyno.name","value":{"stringValue":"web.1"}}]},`+
		`"scopeMetrics":[{"metrics":[{"name":"fir.gauge","gauge":{"dataPoints":[{"timeUnixNano":"%d","asDouble":%g}]}}]}]}]}`, at.UnixNano(), v)
	req, err := http.NewRequest(http.MethodPost, base+"/v1/metrics", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(user, pass)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func sortedKeys(m map[string]float64) []string {
	var s []string
	for k := range m {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

// TestDrainURLErrors: -drain-url says what it needs, names no secret, and
// prints nothing on stdout when it cannot print the URL.
func TestDrainURLErrors(t *testing.T) {
	tests := map[string]struct {
		env  map[string]string
		args []string
		want string
	}{
		"no DRAIN_SECRET":  {nil, []string{"-drain-url", "billing", "-drain-host", "m.example.com"}, "-drain-url needs DRAIN_SECRET"},
		"bad app name":     {map[string]string{"DRAIN_SECRET": appSecretNew}, []string{"-drain-url", "My_App", "-drain-host", "m.example.com"}, `app name "My_App" is not a Heroku app name (3 to 30 characters`},
		"no host":          {map[string]string{"DRAIN_SECRET": appSecretNew}, []string{"-drain-url", "billing"}, "-drain-host HOST or DRAIN_HOST"},
		"host with scheme": {map[string]string{"DRAIN_SECRET": appSecretNew}, []string{"-drain-url", "billing", "-drain-host", "https://m.example.com"}, "want a bare host name"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			if code := realMain(tc.args, strings.NewReader(""), &stdout, &stderr); code != 2 {
				t.Fatalf("exit %d, want 2", code)
			}
			if !strings.Contains(stderr.String(), tc.want) || stdout.Len() != 0 || strings.Contains(stderr.String(), "s3cret") {
				t.Errorf("stdout %q stderr %q; want only an error with %q", stdout.String(), stderr.String(), tc.want)
			}
		})
	}
	clearEnv(t)
	t.Setenv("DRAIN_SECRET", appSecretNew)
	t.Setenv("DRAIN_HOST", "m.example.com")
	var stdout, stderr bytes.Buffer
	if code := realMain([]string{"-drain-url", "billing"}, strings.NewReader(""), &stdout, &stderr); code != 0 ||
		!strings.HasPrefix(stdout.String(), "https://billing:"+keyring(t, appSecretNew).Token("billing")+"@m.example.com/logs\n") {
		t.Errorf("DRAIN_HOST: exit %d, stdout %q stderr %q", code, stdout.String(), stderr.String())
	}
}
