package logsession

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dynometrics/dynometrics/internal/backoff"
	"github.com/dynometrics/dynometrics/internal/envcfg"
	"github.com/dynometrics/dynometrics/internal/input"
	"github.com/dynometrics/dynometrics/internal/redact"
)

// Defaults for the zero fields of Config, and one fixed timeout
// (DefaultRequestTimeout).
const (
	// DefaultBaseURL is the Platform API.
	DefaultBaseURL = "https://api.heroku.com"
	// DefaultMinBackoff is the first delay before reconnecting.
	DefaultMinBackoff = time.Second
	// DefaultMaxBackoff caps the delay between reconnects.
	DefaultMaxBackoff = 2 * time.Minute
	// DefaultHealthyAfter: a stream that stayed open this long resets the
	// backoff to MinBackoff.
	DefaultHealthyAfter = time.Minute
	// DefaultIdleTimeout ends a stream that delivered nothing for this long (a
	// dead connection), which then reconnects.
	DefaultIdleTimeout = 5 * time.Minute
	// DefaultRequestTimeout bounds the log-session POST and the wait for the
	// stream's response headers.
	DefaultRequestTimeout = 30 * time.Second
	// maxErrorBody bounds how much of an API error response is read.
	maxErrorBody = 4 << 10
)

// Config configures a Tailer. The zero value of every optional field means its
// documented default.
type Config struct {
	APIKey  string // HEROKU_API_KEY; required; sent as a Bearer token and never logged
	App     string // HEROKU_APP_NAME; required
	BaseURL string // Platform API base URL; "" means DefaultBaseURL

	MinBackoff   time.Duration // 0 means DefaultMinBackoff
	MaxBackoff   time.Duration // 0 means DefaultMaxBackoff
	HealthyAfter time.Duration // 0 means DefaultHealthyAfter
	IdleTimeout  time.Duration // 0 means DefaultIdleTimeout

	// Logger receives reconnects and failures; nil means slog.Default().
	Logger *slog.Logger
}

// Stats are the cumulative counters of a Tailer (Backoff is a current value).
type Stats struct {
	Sessions      uint64        `metric:"sessions"`                   // log sessions created (201)
	SessionErrors uint64        `metric:"session_errors errors,drop"` // failed log-session POSTs (network error or non-2xx)
	Unauthorized  uint64        `metric:"unauthorized,drop"`          // of those, 401 or 403: check HEROKU_API_KEY
	Streams       uint64        `metric:"-"`                          // streams opened (200)
	StreamErrors  uint64        `metric:"stream_errors errors,drop"`  // streams that could not be opened or failed while reading
	StreamEnds    uint64        `metric:"-"`                          // streams that ended cleanly (EOF)
	IdleTimeouts  uint64        `metric:"idle_timeouts,drop"`         // streams ended after IdleTimeout without data
	Backoff       time.Duration `metric:"-"`                          // the delay before the next reconnect, 0 while streaming
}

// Tailer tails the app's logs into a Processor. Safe for concurrent use (Run
// must be called once).
type Tailer struct {
	p        *input.Processor
	cfg      Config
	log      *slog.Logger
	client   *http.Client
	sessions string // the log-sessions URL
	redact   *redact.Redactor

	// sleep waits d or until ctx ends; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error

	sessionsN, sessionErrs, unauthorized, streams, streamErrs, streamEnds, idle atomic.Uint64
	backoff                                                                     atomic.Int64
}

// New returns a Tailer. It fails when the key or app is missing or the base
// URL is not an absolute http(s) URL.
func New(p *input.Processor, cfg Config) (*Tailer, error) {
	if p == nil {
		return nil, errors.New("logsession: nil Processor")
	}
	if cfg.APIKey == "" || cfg.App == "" {
		return nil, errors.New("logsession: APIKey and App are required")
	}
	cfg.BaseURL = cmp.Or(cfg.BaseURL, DefaultBaseURL)
	// HEROKU_API_URL's rule (Env.Validate), for callers that bypass it.
	if err := envcfg.URL("BaseURL", cfg.BaseURL, false); err != nil {
		return nil, fmt.Errorf("logsession: %w", err)
	}
	if cfg.MinBackoff < 0 || cfg.MaxBackoff < 0 || cfg.HealthyAfter < 0 || cfg.IdleTimeout < 0 {
		return nil, errors.New("logsession: negative duration in Config")
	}
	cfg.MinBackoff = cmp.Or(cfg.MinBackoff, DefaultMinBackoff)
	cfg.MaxBackoff = max(cmp.Or(cfg.MaxBackoff, DefaultMaxBackoff), cfg.MinBackoff)
	cfg.HealthyAfter = cmp.Or(cfg.HealthyAfter, DefaultHealthyAfter)
	cfg.IdleTimeout = cmp.Or(cfg.IdleTimeout, DefaultIdleTimeout)
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	// No client Timeout: the stream is long-lived.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = DefaultRequestTimeout
	t := &Tailer{p: p, cfg: cfg, log: cfg.Logger, client: &http.Client{Transport: tr}, sleep: sleepCtx, redact: redact.New(cfg.APIKey)}
	t.sessions = strings.TrimSuffix(cfg.BaseURL, "/") + "/apps/" + url.PathEscape(cfg.App) + "/log-sessions"
	return t, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run tails the app until ctx ends, then returns ctx.Err(). Failures (API
// errors, refused or broken streams) are logged and retried with backoff; a
// 401/403 is logged at Error level, as it will not heal by itself.
func (t *Tailer) Run(ctx context.Context) error {
	defer t.backoff.Store(0)
	attempt := 0
	for {
		streamed, err := t.once(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if streamed >= t.cfg.HealthyAfter {
			attempt = 0
		}
		d := t.delay(attempt)
		attempt++
		t.backoff.Store(int64(d))
		if err != nil {
			level := slog.LevelWarn
			if errors.Is(err, errUnauthorized) {
				level = slog.LevelError
			}
			// The error may quote the API's answer: no form of the key passes.
			t.log.Log(ctx, level, "logsession: reconnecting", "err", t.redact.Error(err), "backoff", d)
		} else {
			t.log.Debug("logsession: stream ended, reconnecting", "backoff", d)
		}
		if err := t.sleep(ctx, d); err != nil {
			return err
		}
	}
}

// delay is MinBackoff·2^attempt capped at MaxBackoff, with "equal jitter":
// half of it fixed, half random, so that reconnects of many dynos spread out.
func (t *Tailer) delay(attempt int) time.Duration {
	return backoff.EqualJitter(t.cfg.MinBackoff, t.cfg.MaxBackoff, attempt+1)
}

var errUnauthorized = errors.New("logsession: unauthorized")

// once creates one log session and reads its stream until it ends. It returns
// how long the stream was open, and nil when it ended cleanly.
func (t *Tailer) once(ctx context.Context) (time.Duration, error) {
	streamURL, err := t.createSession(ctx)
	if err != nil {
		t.sessionErrs.Add(1)
		return 0, err
	}
	t.sessionsN.Add(1)
	return t.stream(ctx, streamURL)
}

func (t *Tailer) createSession(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, DefaultRequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.sessions, strings.NewReader(`{"tail":true,"lines":0}`))
	if err != nil {
		return "", fmt.Errorf("logsession: %w", err)
	}
	req.Header.Set("Accept", "application/vnd.heroku+json; version=3")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+t.cfg.APIKey)
	resp, err := t.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("logsession: creating log session for %s: %w", t.cfg.App, redactURLError(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if err != nil {
		return "", fmt.Errorf("logsession: creating log session for %s: reading response: %w", t.cfg.App, redactURLError(err))
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			t.unauthorized.Add(1)
			return "", fmt.Errorf("%w: creating log session for %s: %s%s (check HEROKU_API_KEY)", errUnauthorized, t.cfg.App, resp.Status, apiErrorID(body))
		}
		return "", fmt.Errorf("logsession: creating log session for %s: %s%s", t.cfg.App, resp.Status, apiErrorID(body))
	}
	var s struct {
		LogplexURL string `json:"logplex_url"`
	}
	if err := json.Unmarshal(body, &s); err != nil {
		return "", fmt.Errorf("logsession: creating log session for %s: decoding response: %w", t.cfg.App, err)
	}
	u, err := url.Parse(s.LogplexURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("logsession: creating log session for %s: logplex_url is not an absolute http(s) URL", t.cfg.App)
	}
	return s.LogplexURL, nil
}

// apiErrorID returns ` (id "unauthorized")` from a Platform API error body,
// or "". The message text is left out: only the documented id is reported.
func apiErrorID(body []byte) string {
	var e struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(body, &e) != nil || e.ID == "" || len(e.ID) > 64 {
		return ""
	}
	return fmt.Sprintf(" (id %q)", e.ID)
}

// stream GETs the logplex URL and feeds its lines to the Processor. It
// returns how long the stream was open.
func (t *Tailer) stream(ctx context.Context, streamURL string) (streamed time.Duration, err error) {
	host := hostOf(streamURL)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, streamURL, nil)
	if err != nil {
		t.streamErrs.Add(1)
		return 0, fmt.Errorf("logsession: stream on %s: bad request", host)
	}
	resp, err := t.client.Do(req)
	if err != nil {
		t.streamErrs.Add(1)
		return 0, fmt.Errorf("logsession: stream on %s: %w", host, redactURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.streamErrs.Add(1)
		return 0, fmt.Errorf("logsession: stream on %s: %s", host, resp.Status)
	}
	t.streams.Add(1)
	t.backoff.Store(0)
	opened := time.Now()
	defer func() { streamed = time.Since(opened) }()
	// A timer cancels the request when nothing arrives for IdleTimeout.
	idle := time.AfterFunc(t.cfg.IdleTimeout, func() { cancel(errIdle) })
	defer idle.Stop()
	r := &idleReader{r: resp.Body, timer: idle, d: t.cfg.IdleTimeout}
	err = t.p.ReadLines(ctx, r, input.FormatText)
	switch {
	case err == nil:
		t.streamEnds.Add(1)
		return 0, nil
	case context.Cause(ctx) == errIdle:
		t.idle.Add(1)
		return 0, fmt.Errorf("logsession: stream on %s: nothing for %v", host, t.cfg.IdleTimeout)
	case ctx.Err() != nil:
		return 0, ctx.Err()
	}
	t.streamErrs.Add(1)
	return 0, fmt.Errorf("logsession: stream on %s: %w", host, redactURLError(err))
}

var errIdle = errors.New("idle")

// idleReader pushes the idle timer back on every read that returned data.
type idleReader struct {
	r     io.Reader
	timer *time.Timer
	d     time.Duration
}

func (ir *idleReader) Read(b []byte) (int, error) {
	n, err := ir.r.Read(b)
	if n > 0 {
		ir.timer.Reset(ir.d)
	}
	return n, err
}

// hostOf returns the host of a URL, so that errors never show the path or
// query of a logplex_url (they grant access to the logs).
func hostOf(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return "(unparseable URL)"
	}
	return u.Host
}

// redactURLError replaces a *url.Error, which carries the full URL, with its
// operation, host and cause.
func redactURLError(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		cause := ue.Err
		if ne, ok := errors.AsType[net.Error](ue.Err); ok && ne.Timeout() {
			cause = fmt.Errorf("timeout: %w", ue.Err)
		}
		return fmt.Errorf("%s %s: %w", ue.Op, hostOf(ue.URL), cause)
	}
	return err
}

// Stats returns the cumulative counters. Safe for concurrent use.
func (t *Tailer) Stats() Stats {
	return Stats{
		Sessions:      t.sessionsN.Load(),
		SessionErrors: t.sessionErrs.Load(),
		Unauthorized:  t.unauthorized.Load(),
		Streams:       t.streams.Load(),
		StreamErrors:  t.streamErrs.Load(),
		StreamEnds:    t.streamEnds.Load(),
		IdleTimeouts:  t.idle.Load(),
		Backoff:       time.Duration(t.backoff.Load()),
	}
}
