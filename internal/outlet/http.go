package outlet

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dynometrics/dynometrics/internal/redact"
)

// MaxErrorBody is how much of a receiver's message goes into an error.
const MaxErrorBody = 512

// maxResponseBody bounds how much of any response body is read.
const maxResponseBody = 64 << 10

// minSecret is the shortest header or query value treated as a secret:
// redacting a one- or two-character value (a tenant "1") would mangle every
// message.
const minSecret = 3

// ErrRedirect is wrapped by the error of a request whose receiver redirected
// it to another host or from https to plain http: the request is not sent
// there, since its headers carry credentials. The batch is retried, so the
// data is kept while the endpoint is corrected.
var ErrRedirect = errors.New("redirect to another origin not followed: the request carries credentials; configure the final URL")

// HTTPConfig configures an HTTPSender. Zero values mean the documented defaults.
type HTTPConfig struct {
	Name   string       // prefixes every error, e.g. "promwrite"
	URL    string       // where batches are POSTed; its query is redacted from errors
	Unit   string       // what Batch.N counts, for errors: "measurements", "samples", "points"
	Client *http.Client // copied, with CheckRedirect set (see ErrRedirect); default http.DefaultClient's settings
	// Timeout bounds each request (0: only the client's own timeout).
	Timeout time.Duration

	Header http.Header // protocol headers (Content-Type, User-Agent …), not secret
	// Credentials are configured headers that may carry a secret
	// (Authorization, X-API-Key …). Their values, and the token after a
	// value's first space ("Bearer t"), are redacted from every error, like
	// the URL's query and its values, and Secrets.
	Credentials map[string]string
	// User and Password, when either is set, are sent as Basic auth and
	// redacted in every form.
	User, Password string
	Secrets        []string // other secrets to redact from errors (a token, a password)

	// Retryable reports whether a non-2xx status is transient (retried with
	// backoff and Retry-After); default: 429 and every 5xx. 401 and 403 are
	// always credentials errors (ErrUnauthorized); every other status is
	// refused for good (ErrPermanent).
	Retryable func(status int) bool
	// Message extracts the receiver's message from an error response
	// (default: the body as text).
	Message func(contentType string, body []byte) string
	// Accepted, when set, is called for every 2xx response with its body
	// (at most 64 KiB) or the error reading it: OTLP reads a partial success
	// there. The batch counts as accepted whatever it does.
	Accepted func(h http.Header, body []byte, readErr error, b *Batch)
}

// HTTPSender POSTs each batch to one endpoint and classifies the answer for
// the Queue: 2xx accepted; 401 and 403 ErrUnauthorized (kept, retried);
// retryable statuses retried after at least their Retry-After; every other
// status ErrPermanent (dropped). Transport errors are retried. Errors name
// the endpoint without its query and never contain a credential in any
// form internal/redact knows. Safe for concurrent use.
type HTTPSender struct {
	cfg     HTTPConfig
	client  *http.Client
	display string // the URL without userinfo and query
	header  http.Header
	redact  *redact.Redactor

	rejected, retried atomic.Int64
}

var _ Sender = (*HTTPSender)(nil)

// NewHTTPSender returns a sender for cfg. cfg.URL must parse (the outlets
// validate it first).
func NewHTTPSender(cfg HTTPConfig) *HTTPSender {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		u = &url.URL{}
	}
	cfg.Unit = cmp.Or(cfg.Unit, "measurements")
	if cfg.Retryable == nil {
		cfg.Retryable = func(code int) bool { return code == http.StatusTooManyRequests || code >= 500 }
	}
	if cfg.Message == nil {
		cfg.Message = func(_ string, body []byte) string { return strings.TrimSpace(string(body)) }
	}
	client := *cmp.Or(cfg.Client, &http.Client{})
	client.CheckRedirect = SameOrigin
	h := http.Header(maps.Collect(maps.All(cfg.Header))) // a copy, never nil; only Set below changes it
	secrets := []string{u.RawQuery}
	for name, v := range cfg.Credentials {
		h.Set(name, v)
		_, tok, _ := strings.Cut(v, " ")
		secrets = append(secrets, v, tok)
	}
	for _, vs := range u.Query() {
		secrets = append(secrets, vs...)
	}
	secrets = append(slices.DeleteFunc(secrets, func(v string) bool { return len(v) < minSecret }), cfg.Secrets...)
	if cfg.User != "" || cfg.Password != "" { // what http.Request.SetBasicAuth sets
		h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(cfg.User+":"+cfg.Password)))
	}
	return &HTTPSender{
		cfg: cfg, client: &client, display: redact.URL(u), header: h,
		redact: redact.New(secrets...).Basic(cfg.User, cfg.Password),
	}
}

// SameOrigin is the CheckRedirect of every outlet's HTTP client: it follows
// a redirect only to the same scheme, host and port with the same method
// (a 307 or 308), at most 10 times. Anything else wraps ErrRedirect, so that
// no credential-carrying header (Authorization, an API-key header) reaches
// another host or travels over plain http, and a POST never silently
// becomes a GET.
func SameOrigin(req *http.Request, via []*http.Request) error {
	first := via[0]
	switch {
	case len(via) >= 10:
		return errors.New("stopped after 10 redirects")
	case req.URL.Scheme != first.URL.Scheme || req.URL.Host != first.URL.Host:
		return fmt.Errorf("%w (to %s)", ErrRedirect, redact.URL(req.URL))
	case req.Method != first.Method:
		return fmt.Errorf("%w (a %s would become a %s)", ErrRedirect, first.Method, req.Method)
	}
	return nil
}

// Endpoint returns the URL batches go to, without userinfo and query: safe
// to log.
func (s *HTTPSender) Endpoint() string { return s.display }

// Rejected returns how many responses refused a batch for good.
func (s *HTTPSender) Rejected() int64 { return s.rejected.Load() }

// Retried returns how many responses had a retryable status.
func (s *HTTPSender) Retried() int64 { return s.retried.Load() }

// Redact returns msg with every secret of the sender removed.
func (s *HTTPSender) Redact(msg string) string { return s.redact.String(msg) }

// Send implements Sender.
func (s *HTTPSender) Send(ctx context.Context, b *Batch) error {
	if s.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.Timeout)
		defer cancel()
	}
	prefix := fmt.Sprintf("%s: POST %s: %d %s", s.cfg.Name, s.display, b.N, s.cfg.Unit)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.URL, bytes.NewReader(b.Body))
	if err != nil {
		return fmt.Errorf("%s: %w", prefix, ErrPermanent)
	}
	req.Header = s.header.Clone()
	resp, err := s.client.Do(req)
	if err != nil {
		// *url.Error repeats the whole URL, query included.
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err
		}
		return s.redact.Error(fmt.Errorf("%s: %w", prefix, err))
	}
	defer resp.Body.Close()
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // lets the connection be reused
	code := resp.StatusCode
	if code/100 == 2 {
		if s.cfg.Accepted != nil {
			s.cfg.Accepted(resp.Header, body, rerr, b)
		}
		return nil
	}
	msg := s.cfg.Message(resp.Header.Get("Content-Type"), body)
	msg = s.redact.String(strings.ToValidUTF8(msg[:min(len(msg), MaxErrorBody)], "?"))
	err = fmt.Errorf("%s: HTTP %s: %q", prefix, resp.Status, msg)
	switch {
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return fmt.Errorf("%w: %w", err, ErrUnauthorized)
	case code/100 == 3:
		// A redirect SameOrigin refused is a transport error; one the client
		// did not resolve (no Location) is transient.
		s.retried.Add(1)
		return err
	case s.cfg.Retryable(code):
		s.retried.Add(1)
		return RetryAfter(err, ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()))
	}
	s.rejected.Add(1)
	return fmt.Errorf("%w: %w", err, ErrPermanent)
}
