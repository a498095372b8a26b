// Package browser_test opens the worker's live view in headless Chromium
// (through chromedp) and checks what the page draws. It lives in the e2e
// test module so that chromedp stays out of the main module's requirements.
package browser_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"image/color"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/dynometrics/dynometrics/internal/testproc"
)

// rootDir is the main module's directory: the worker is built there, with
// the main module's own requirements, as a deployment builds it.
const rootDir = "../.."

var (
	buildOnce sync.Once
	buildDir  string
	workerBin string
	buildErr  error
)

// buildWorker builds the worker binary once for the package's tests.
func buildWorker(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "dynometrics-browser")
		if buildErr != nil {
			return
		}
		workerBin = filepath.Join(buildDir, "worker")
		cmd := exec.Command("go", "build", "-o", workerBin, "./worker")
		cmd.Dir = rootDir
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./worker: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return workerBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// syslogTime formats t as Logplex stamps a line.
func syslogTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000+00:00") }

// chromiumBinary returns $CHROMIUM_BIN, else Debian's chromium (on $PATH or
// in /usr/bin), else "".
func chromiumBinary() string { return testproc.Find("CHROMIUM_BIN", "chromium") }

// newBrowser starts a headless Chromium with a fresh profile and nothing
// that reaches the network on its own, and stops it when the test ends.
// Without a browser it skips the test, or fails it when CI=true.
func newBrowser(t *testing.T, width, height int) context.Context {
	t.Helper()
	bin := chromiumBinary()
	if bin == "" {
		testproc.Missing(t, "no chromium binary (apt-get install chromium, or set CHROMIUM_BIN)")
		return nil
	}
	var out testproc.LimitedBuffer
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
		chromedp.CombinedOutput(&out),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		if t.Failed() {
			t.Logf("chromium output:\n%.8000s", out.String())
		}
	})
	// The first action starts the browser; it must not run under a timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	return ctx
}

// viewWorker is the built worker binary running with -stdin -view.
type viewWorker struct {
	url    string // http://127.0.0.1:PORT/
	stdin  io.WriteCloser
	stderr *testproc.LimitedBuffer
}

var liveViewURL = regexp.MustCompile(`msg="live view" url=(http://\S+)`)

// startViewWorker runs the built worker with -stdin -view 127.0.0.1:0. The
// lines are in the stdin pipe before the worker starts, so it has read them
// all long before its first flush, one second after it started: no bucket
// can be flushed with half of its lines (for up to 64 KiB of lines).
func startViewWorker(t *testing.T, lines []string, env ...string) *viewWorker {
	t.Helper()
	bin := buildWorker(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	in := strings.Join(lines, "\n") + "\n"
	if len(in) > 64<<10 {
		// More than a pipe holds (64 KiB on Linux): written while the
		// worker reads, without the guarantee above.
		go func() { _, _ = io.WriteString(w, in) }()
	} else if _, err := io.WriteString(w, in); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-stdin", "-view", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), append([]string{"EMITTER_INTERVAL=1h"}, env...)...)
	cmd.Stdin = r
	cmd.Stdout = io.Discard
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	vw := &viewWorker{stdin: w, stderr: &testproc.LimitedBuffer{}}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			fmt.Fprintln(vw.stderr, sc.Text())
			if m := liveViewURL.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		w.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("worker exit: %v\n%s", err, vw.stderr.String())
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("worker did not stop within 30s of SIGTERM\n%s", vw.stderr.String())
		}
		pw.Close()
		if t.Failed() {
			t.Logf("worker stderr:\n%s", vw.stderr.String())
		}
	})
	select {
	case vw.url = <-found:
	case <-time.After(30 * time.Second):
		t.Fatalf("the worker printed no live view URL:\n%s", vw.stderr.String())
	}
	return vw
}

// chart is what the page's window.dynoview.charts() reports of one chart:
// its legend labels and the data uPlot draws (times, then one array per line).
type chart struct {
	Name   string
	Stat   string
	Labels []string
	Axis   string // the y axis label: the unit
	Data   [][]*float64
	Canvas bool
}

// TestViewInBrowser runs the built worker with -stdin -view, feeds it three
// metrics (count, sample, measure) from two dynos over fifteen 10-second
// buckets, opens the page in headless Chromium and checks that every metric
// is listed and charted with both dynos and the all-dynos line, and that the
// values the charts draw are the buckets' values, worked out here by hand.
// Then the stat choice redraws a measure, a new dyno appears without a
// reload, and the filter hides what does not match.
func TestViewInBrowser(t *testing.T) {
	ctx := newBrowser(t, 1400, 2200)

	// Fifteen whole buckets, the newest ending 10 s ago: all are due at the
	// worker's first flush (grace 1 s). web.2 reports in the first two only,
	// so by the last it has been silent for 13 buckets, over two minutes:
	// ended.
	const res = 10 * time.Second
	b0 := time.Now().UTC().Truncate(res).Add(-16 * res)
	ts := func(i, s int) string { return syslogTime(b0.Add(time.Duration(i)*res + time.Duration(s)*time.Second)) }
	line := func(i, s int, dyno, pairs string) string { return ts(i, s) + " app[" + dyno + "]: " + pairs }
	lines := []string{
		line(0, 1, "web.1", "count#http.requests=1 measure#db.latency=1ms"),
		line(0, 2, "web.1", "count#http.requests=2 measure#db.latency=3ms"),
		line(0, 8, "web.1", "sample#memory_rss=110MB"),
		line(0, 5, "web.1", "sample#memory_rss=100MB"), // earlier by time though later in the stream
		line(0, 3, "web.2", "count#http.requests=10 sample#memory_rss=200MB measure#db.latency=2ms"),
		line(0, 4, "web.2", "measure#db.latency=4ms"),
		line(0, 5, "web.2", "measure#db.latency=6ms"),
		line(1, 2, "web.2", "count#http.requests=20 sample#memory_rss=210MB measure#db.latency=8ms"),
	}
	const buckets = 15
	for i := 1; i < buckets; i++ { // web.1: requests i+2, memory 110+10i, latency 2i+3
		lines = append(lines, line(i, 1, "web.1", fmt.Sprintf("count#http.requests=%d sample#memory_rss=%dMB measure#db.latency=%dms", i+2, 110+10*i, 2*i+3)))
	}
	vw := startViewWorker(t, lines, "METRICS_RESOLUTION=10s", "METRICS_GRACE=1s")

	n := (*float64)(nil)
	f := func(v float64) *float64 { return &v }
	// col builds a line: the given first values, then web.1's formula from
	// bucket len(first) on (nil: a dyno without values there).
	col := func(rest func(i int) *float64, first ...*float64) []*float64 {
		out := append([]*float64(nil), first...)
		for i := len(first); i < buckets; i++ {
			out = append(out, rest(i))
		}
		return out
	}
	none := func(int) *float64 { return nil }
	var xs []*float64
	for i := range buckets {
		xs = append(xs, f(float64(b0.Add(time.Duration(i)*res).Unix())))
	}
	req := func(i int) *float64 { return f(float64(i + 2)) }
	mem := func(i int) *float64 { return f(float64(110 + 10*i)) }
	lat := func(i int) *float64 { return f(float64(2*i + 3)) }
	ended := []string{"all dynos", "web.1", "web.2 (ended)"}
	want := map[string]chart{
		// Sums per bucket; all dynos: their sum.
		"http.requests": {Stat: "sum", Axis: "count per 10 s", Labels: ended, Data: [][]*float64{xs,
			col(req, f(13), f(23)),
			col(req, f(3)),
			col(none, f(10), f(20))}},
		// Last value by time; all dynos: the average of the dynos' last values.
		"memory_rss": {Stat: "last", Axis: "MB", Labels: ended, Data: [][]*float64{xs,
			col(mem, f(155), f(165)),
			col(mem, f(110)),
			col(none, f(200), f(210))}},
		// Nearest-rank median; all dynos: the median of the merged values,
		// {1,3} ∪ {2,4,6} → 3 and {5} ∪ {8} → 5.
		"db.latency": {Stat: "median", Axis: "ms", Labels: ended, Data: [][]*float64{xs,
			col(lat, f(3), f(5)),
			col(lat, f(1)),
			col(none, f(4), f(8))}},
	}

	charts := func(cond string) []chart {
		t.Helper()
		c, err := chromedp.Run(ctx, chromedp.Poll[[]chart](
			`(() => { const c = window.dynoview && dynoview.charts(); return c && (`+cond+`) ? c : null })()`,
			chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second)))
		if err != nil {
			t.Fatalf("waiting for the page (%s): %v", cond, err)
		}
		return c
	}
	check := func(got []chart, want map[string]chart) {
		t.Helper()
		if len(got) != len(want) {
			t.Errorf("%d charts, want %d", len(got), len(want))
		}
		for _, c := range got {
			w, ok := want[c.Name]
			if !ok {
				t.Errorf("unexpected chart %q", c.Name)
				continue
			}
			if !c.Canvas || c.Stat != w.Stat || c.Axis != w.Axis || !reflect.DeepEqual(c.Labels, w.Labels) || !reflect.DeepEqual(c.Data, w.Data) {
				t.Errorf("chart %s: canvas %v stat %q axis %q labels %q data %s\nwant stat %q axis %q labels %q data %s",
					c.Name, c.Canvas, c.Stat, c.Axis, c.Labels, show(c.Data), w.Stat, w.Axis, w.Labels, show(w.Data))
			}
		}
	}
	if _, err := chromedp.Run(ctx, chromedp.Navigate(vw.url)); err != nil {
		t.Fatal(err)
	}
	check(charts(`c.length === 3 && c.every((x) => x.canvas && x.data && x.data[0].length === `+fmt.Sprint(buckets)+`)`), want)

	// The list names every metric with its kind; the axes carry the units.
	list, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
		`[...document.querySelectorAll('#list li')].map((li) => li.textContent)`))
	if err != nil {
		t.Fatal(err)
	}
	if w := []string{"db.latencymeasure · 1/2", "http.requestscount · 1/2", "memory_rsssample · 1/2"}; !reflect.DeepEqual(list, w) {
		t.Errorf("list = %q, want %q", list, w)
	}
	// Everything the page loaded came from the worker.
	loaded, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
		`[location.href, ...performance.getEntriesByType('resource').map((e) => e.name)]`))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range loaded {
		if !strings.HasPrefix(u, vw.url) {
			t.Errorf("the page loaded %s, not from %s", u, vw.url)
		}
	}

	// The 95th percentile, chosen on the page: {1,3} ∪ {2,4,6} → 6, {5} ∪ {8} → 8.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](
		`(() => { const s = document.querySelector('article[data-name="db.latency"] select');
			s.value = 'perc95'; s.dispatchEvent(new Event('change')); })()`)); err != nil {
		t.Fatal(err)
	}
	want["db.latency"] = chart{Stat: "perc95", Axis: "ms", Labels: ended, Data: [][]*float64{xs,
		col(lat, f(6), f(8)),
		col(lat, f(3)),
		col(none, f(6), f(8))}}
	check(charts(`c.some((x) => x.name === 'db.latency' && x.stat === 'perc95')`), want)

	// A new dyno appears without a reload, in the bucket open 5 s from now:
	// due within 16 s, and at least 6 s after the line is written, so a
	// slow read cannot make it late.
	now := time.Now().UTC().Add(5 * time.Second)
	if _, err := io.WriteString(vw.stdin, syslogTime(now)+" app[web.3]: count#http.requests=7\n"); err != nil {
		t.Fatal(err)
	}
	got := charts(`c.some((x) => x.name === 'http.requests' && x.labels.includes('web.3'))`)
	xNow := f(float64(now.Truncate(res).Unix()))
	want["http.requests"] = chart{Stat: "sum", Axis: "count per 10 s", Labels: []string{"all dynos", "web.1", "web.2 (ended)", "web.3"}, Data: [][]*float64{
		append(xs, xNow),
		append(col(req, f(13), f(23)), f(7)),
		append(col(req, f(3)), n),
		append(col(none, f(10), f(20)), n),
		append(col(none), f(7))}}
	for _, c := range got {
		if c.Name == "http.requests" {
			check([]chart{c}, map[string]chart{c.Name: want[c.Name]})
		}
	}

	// The filter hides the metrics that do not match, in the list and the charts.
	shown, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
		`(() => { const f = document.getElementById('filter'); f.value = 'MEM'; f.dispatchEvent(new Event('input'));
			return [...document.querySelectorAll('#list li:not([hidden]), article.metric:not([hidden])')].map((e) => e.tagName + ' ' + e.dataset.name); })()`))
	if err != nil {
		t.Fatal(err)
	}
	if w := []string{"LI memory_rss", "ARTICLE memory_rss"}; !reflect.DeepEqual(shown, w) {
		t.Errorf("shown after filtering for MEM: %q, want %q", shown, w)
	}

	// The API answers what the page drew.
	resp, err := http.Get(vw.url + "api/series?name=http.requests")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if wantSub := fmt.Sprintf(`{"source":"web.3","last":%d,"ended":false,"points":[[%d,7]]}`,
		int64(*xNow), int64(*xNow)); !strings.Contains(string(body), wantSub) {
		t.Errorf("api/series lacks %s:\n%s", wantSub, body)
	}
}

// show formats chart data with nulls for a readable failure.
func show(d [][]*float64) string {
	var b strings.Builder
	for _, a := range d {
		b.WriteString("[")
		for i, v := range a {
			if i > 0 {
				b.WriteString(" ")
			}
			if v == nil {
				b.WriteString("null")
			} else {
				fmt.Fprint(&b, *v)
			}
		}
		b.WriteString("]")
	}
	return b.String()
}

// TestViewScreenshot takes the README's screenshot of the live view: three
// dynos, one of which stops and one that starts, over 40 one-minute buckets.
// It checks that the capture is a PNG of the window's width with the charts
// drawn (many colours, not a blank page). With $VIEW_SCREENSHOT set (e.g.
// docs/view.png, absolute or relative to e2e/browser) it also writes the image there.
func TestViewScreenshot(t *testing.T) {
	const width, height = 1280, 900
	ctx := newBrowser(t, width, height)
	b0 := time.Now().UTC().Truncate(time.Minute).Add(-42 * time.Minute)
	rng := rand.New(rand.NewPCG(1, 2))
	var lines []string
	for i := range 40 {
		for d, dyno := range []string{"web.1", "web.2", "web.3", "web.4"} {
			if (dyno == "web.3" && i >= 28) || (dyno == "web.4" && i < 12) {
				continue
			}
			load := 1 + 0.5*math.Sin(float64(i)/6+float64(d))
			for s := 0; s < 60; s += 20 {
				at := syslogTime(b0.Add(time.Duration(i)*time.Minute + time.Duration(s+d)*time.Second))
				lines = append(lines, fmt.Sprintf("%s app[%s]: count#http.requests=%d sample#memory_rss=%.1fMB sample#load_avg_1m=%.2f",
					at, dyno, int(40*load)+rng.IntN(10), 180+float64(d)*25+float64(i)*0.8+rng.Float64()*4, load*0.6+rng.Float64()*0.1))
				for range 5 {
					lines = append(lines, fmt.Sprintf("%s app[%s]: measure#http.latency=%.1fms", at, dyno, 20*load+rng.ExpFloat64()*15))
				}
			}
		}
	}
	vw := startViewWorker(t, lines)
	if _, err := chromedp.Run(ctx, chromedp.Navigate(vw.url)); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](
		`(() => { const c = window.dynoview && dynoview.charts().filter((x) => x.visible); return c && c.length >= 4 && c.every((x) => x.canvas && x.data); })()`,
		chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatal(err)
	}
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("the screenshot is not a PNG: %v", err)
	}
	// The capture is the page's viewport: the window's width, its height
	// less what the browser keeps for itself.
	if b := img.Bounds(); b.Dx() != width || b.Dy() > height || b.Dy() < height*2/3 {
		t.Errorf("screenshot is %dx%d, want %d wide and %d to %d high", b.Dx(), b.Dy(), width, height*2/3, height)
	}
	colours := map[color.RGBA]bool{}
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y += 3 {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x += 3 {
			colours[color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)] = true
		}
	}
	// A blank or text-only page has a handful; four charts of four
	// anti-aliased dyno lines have hundreds.
	if len(colours) < 100 {
		t.Errorf("the screenshot has %d colours: the charts were not drawn", len(colours))
	}
	if path := os.Getenv("VIEW_SCREENSHOT"); path != "" {
		if err := os.WriteFile(path, shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
