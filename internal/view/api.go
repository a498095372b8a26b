package view

import (
	"compress/gzip"
	"embed"
	"io/fs"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/dynometrics/dynometrics/internal/input/budget"
	"github.com/dynometrics/dynometrics/internal/jsonappend"
	"github.com/dynometrics/dynometrics/internal/metric"

	// gzhttp compresses the API's answers (a chart's JSON shrinks about
	// fourfold) and handles Accept-Encoding, Vary and small bodies for us; it
	// comes with klauspost/compress, which the snappy encoder already uses.
	"github.com/klauspost/compress/gzhttp"
)

// MaxConcurrentRequests bounds the API requests served at once, so that
// many open pages cannot hold many large answers in memory; more are answered
// 503 with Retry-After and counted (Stats.Busy).
const MaxConcurrentRequests = 8

// The paths Handler serves.
const (
	MetricsPath = "/api/metrics"
	SeriesPath  = "/api/series"
	AssetsPath  = "/assets/"
)

//go:embed assets
var assets embed.FS

// HandlerConfig configures Handler.
type HandlerConfig struct {
	// User and Password, when Password is set, are the Basic auth
	// credentials every request must carry (compared in constant time).
	User, Password string
	// Budget, when set, bounds the bytes of API answers being built at once,
	// shared with the worker's other HTTP servers (request bodies in
	// flight): an answer that does not fit gets 503 with Retry-After
	// (Stats.Busy). nil: only MaxConcurrentRequests bounds them.
	Budget *budget.Budget
}

// Handler returns the view's HTTP handler: the page at "/", its assets under
// AssetsPath, and the JSON API at MetricsPath and SeriesPath. Mount it at the
// root of a server or mux.
func (h *History) Handler(cfg HandlerConfig) http.Handler {
	mux := http.NewServeMux()
	static, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.FileServerFS(static)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, static, "index.html")
	})
	mux.Handle("GET "+AssetsPath, http.StripPrefix(AssetsPath[:len(AssetsPath)-1], http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") { // files only, no directory listings
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})))
	sem := make(chan struct{}, MaxConcurrentRequests)
	// BestSpeed: the answers are mostly digits and compress well at any
	// level; BestSpeed compresses 1,000 × 360 points (7.6 MB → 1.4 MB) in
	// about a third of the default level's time, for an answer 13 % larger
	// (see BenchmarkSeries).
	gz, err := gzhttp.NewWrapper(gzhttp.CompressionLevel(gzip.BestSpeed))
	if err != nil {
		panic(err) // fixed options
	}
	api := func(f func(http.ResponseWriter, *http.Request, *budget.Budget)) http.Handler {
		return gz(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			default:
				h.refuse(w, "view: too many requests at once")
				return
			}
			w.Header().Set("Cache-Control", "no-cache")
			f(w, r, cfg.Budget)
		}))
	}
	mux.Handle("GET "+MetricsPath, api(h.serveMetrics))
	mux.Handle("GET "+SeriesPath, api(h.serveSeries))

	var handler http.Handler = mux
	if cfg.Password != "" {
		handler = newLoginGuard(h, cfg.User, cfg.Password).wrap(mux)
	}
	return securityHeaders(handler)
}

// securityHeaders forbids loading anything from another host (the page
// needs none) and framing.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		h.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	b := append(jsonappend.String([]byte(`{"error":`), msg), "}\n"...)
	writeJSON(w, status, b)
}

// refuse answers 503 with Retry-After and counts it (Stats.Busy).
func (h *History) refuse(w http.ResponseWriter, msg string) {
	h.mu.Lock()
	h.stats.Busy++
	h.mu.Unlock()
	w.Header().Set("Retry-After", "1")
	http.Error(w, msg, http.StatusServiceUnavailable)
}

// answer writes the JSON answer build appends to a buffer of size bytes,
// taken from the budget b for as long as it is built and written; without
// room in b it refuses the request, and a client holding this version gets
// 304. h.mu is read-locked: answer unlocks it once the answer is built.
func (h *History) answer(w http.ResponseWriter, r *http.Request, b *budget.Budget, size int, build func([]byte) []byte) {
	etag := `"` + strconv.FormatUint(h.version, 10) + `"`
	w.Header().Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		h.mu.RUnlock()
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if !b.Take(int64(size)) {
		h.mu.RUnlock()
		h.refuse(w, "view: busy, retry")
		return
	}
	defer b.Release(int64(size))
	body := build(make([]byte, 0, size))
	h.mu.RUnlock()
	writeJSON(w, http.StatusOK, body)
}

func (h *History) serveMetrics(w http.ResponseWriter, r *http.Request, bud *budget.Budget) {
	h.mu.RLock()
	app := r.URL.Query().Get("app")
	h.answer(w, r, bud, 256+len(h.metrics)*128+h.series*64, func(b []byte) []byte { return h.appendMetrics(b, app) })
}

func (h *History) serveSeries(w http.ResponseWriter, r *http.Request, bud *budget.Budget) {
	q := r.URL.Query()
	name := q.Get("name")
	if name == "" {
		writeError(w, http.StatusBadRequest, "name: missing; GET "+SeriesPath+"?name=NAME[&stat=median|perc95|perc99|max|count][&app=APP]")
		return
	}
	stat, err := ParseStat(q.Get("stat"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	h.mu.RLock()
	m := h.metrics[histKey(q.Get("app"), name)]
	if m == nil {
		h.mu.RUnlock()
		writeError(w, http.StatusNotFound, "name="+strconv.Quote(name)+": no such metric in the view")
		return
	}
	h.answer(w, r, bud, seriesSize(m), func(b []byte) []byte { return h.appendSeries(b, m, stat) })
}

// seriesSize estimates the length of m's answer: about 24 bytes a point
// ("[1764597600,12.5],") and 64 a line.
func seriesSize(m *metricHist) int {
	n := 256 + (len(m.lines)+1)*64 + m.all.n*24
	for _, l := range m.lines {
		n += l.n * 24
	}
	return n
}

// appendMetrics appends the answer of GET /api/metrics to b; h.mu is held.
// In multi-app mode it lists app's metrics (the first app when app is not
// one of them) and adds "app" and "apps", every app in the view.
func (h *History) appendMetrics(b []byte, app string) []byte {
	seen := map[string]bool{}
	for _, m := range h.metrics {
		if m.app != "" {
			seen[m.app] = true
		}
	}
	apps := slices.Sorted(maps.Keys(seen))
	if len(apps) == 0 {
		app = ""
	} else if !seen[app] {
		app = apps[0]
	}
	b = appendInt(b, `{"version":`, int64(h.version))
	b = appendInt(b, `,"resolution":`, h.period)
	b = appendInt(b, `,"window":`, int64(h.points)*h.period)
	b = appendInt(b, `,"latest":`, h.latest*h.period)
	b = jsonappend.String(append(b, `,"all_source":`...), AllSource)
	// The series cap: when series were left out, the page says so.
	b = appendInt(b, `,"series_cap":{"max":`, int64(h.cfg.MaxSeries))
	b = appendInt(b, `,"held":`, int64(h.series))
	b = appendInt(b, `,"evicted":`, h.stats.Evicted)
	b = appendInt(b, `,"dropped":`, h.stats.DroppedSeriesLimit)
	b = append(b, '}')
	if len(apps) > 0 {
		b = jsonappend.String(append(b, `,"app":`...), app)
		b = append(appendEach(append(b, `,"apps":[`...), apps, jsonappend.String), ']')
	}
	names := make([]string, 0, len(h.metrics))
	for _, m := range h.metrics {
		if m.app == app {
			names = append(names, m.name)
		}
	}
	sortMetrics(names) // order.go: the app's metrics before timer statistics
	b = appendEach(append(b, `,"metrics":[`...), names, func(b []byte, n string) []byte {
		m := h.metrics[histKey(app, n)]
		b = appendMetricHead(b, m)
		b = appendInt(b, `,"updated":`, m.updated*h.period)
		b = appendInt(b, `,"version":`, int64(m.version))
		b = appendEach(append(b, `,"sources":[`...), sortedSources(m), func(b []byte, src string) []byte {
			return append(h.appendSourceHead(b, src, m.lines[src]), '}')
		})
		return append(b, "]}"...)
	})
	return append(b, "]}\n"...)
}

// appendEach appends each x of xs with f, separated by commas.
func appendEach[T any](b []byte, xs []T, f func([]byte, T) []byte) []byte {
	for i, x := range xs {
		if i > 0 {
			b = append(b, ',')
		}
		b = f(b, x)
	}
	return b
}

// appendInt appends key, a JSON text such as `,"name":`, and v.
func appendInt(b []byte, key string, v int64) []byte {
	return strconv.AppendInt(append(b, key...), v, 10)
}

// appendMetricHead appends `{"name":…,"kind":…,"unit":…` (no closing brace).
func appendMetricHead(b []byte, m *metricHist) []byte {
	b = jsonappend.String(append(b, `{"name":`...), m.name)
	b = jsonappend.String(append(b, `,"kind":`...), m.kind.String())
	return jsonappend.String(append(b, `,"unit":`...), m.unit)
}

// appendSourceHead appends `{"source":…,"last":…,"ended":…` (no closing brace).
func (h *History) appendSourceHead(b []byte, src string, l *line) []byte {
	b = jsonappend.String(append(b, `{"source":`...), src)
	b = appendInt(b, `,"last":`, l.newest*h.period)
	return strconv.AppendBool(append(b, `,"ended":`...), h.ended(l.newest))
}

// appendSeries appends the answer of GET /api/series for m to b; h.mu is
// held. The all-dynos line comes first, then the sources in order.
func (h *History) appendSeries(b []byte, m *metricHist, stat Stat) []byte {
	col := 0
	switch m.kind {
	case metric.Counter:
		stat = StatSum
	case metric.Sample:
		stat = StatLast
	default:
		col = int(stat)
	}
	b = jsonappend.String(append(appendMetricHead(b, m), `,"stat":`...), stat.String())
	b = appendInt(b, `,"resolution":`, h.period)
	b = appendInt(b, `,"latest":`, h.latest*h.period)
	b = appendInt(b, `,"version":`, int64(h.version))
	b = append(b, `,"series":[`...)
	from := h.latest - int64(h.points) + 1
	points := func(l *line) {
		b = append(b, `,"points":[`...)
		first := true
		l.each(from, func(idx int64, v []float64) {
			x := v[col]
			if x != x { // NaN: a statistic the all-dynos line could not compute
				return
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			b = appendInt(b, "[", idx*h.period)
			b = append(jsonappend.Float(append(b, ','), x), ']')
		})
		b = append(b, "]}"...)
	}
	b = h.appendSourceHead(b, AllSource, &m.all)
	points(&m.all)
	for _, src := range sortedSources(m) {
		b = append(b, ',')
		l := m.lines[src]
		b = h.appendSourceHead(b, src, l)
		points(l)
	}
	return append(b, "]}\n"...)
}
