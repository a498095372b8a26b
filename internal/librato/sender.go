package librato

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/dynometrics/dynometrics/internal/outlet"
	"github.com/dynometrics/dynometrics/internal/redact"
)

const (
	// DefaultTimeout bounds one request, connection to last response byte.
	DefaultTimeout = 10 * time.Second
	// MaxErrorBody is how much of an error response body goes into the error.
	MaxErrorBody = 512
	// userAgent identifies the outlet to the receiver.
	userAgent = "dynometrics-librato/1"
)

// httpSender posts batches to one endpoint. Credentials travel only in the
// Authorization header, never in the URL, so *url.Error values (which quote
// the URL) cannot leak them. Safe for concurrent use.
type httpSender struct {
	client     *http.Client
	endpoint   string // full URL, e.g. https://metrics-api.librato.com/v1/metrics
	path       string // for errors: /v1/metrics
	user, pass string
	timeout    time.Duration
	redact     *redact.Redactor // the token in every form, scrubbed from error bodies should a receiver echo it
}

// Send implements outlet.Sender: 2xx is success; 401 and 403 wrap
// outlet.ErrUnauthorized; 429 and 5xx are retryable; other statuses wrap
// outlet.ErrPermanent with the start of the response body; network errors
// are retryable.
func (s *httpSender) Send(ctx context.Context, b *outlet.Batch) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, bytes.NewReader(b.Body))
	if err != nil {
		return fmt.Errorf("librato: POST %s: %w: %w", s.path, err, outlet.ErrPermanent)
	}
	req.SetBasicAuth(s.user, s.pass)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	resp, err := s.client.Do(req)
	if err != nil {
		return s.redact.Error(fmt.Errorf("librato: %w", err)) // the URL in *url.Error carries no credentials either
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, MaxErrorBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // let the connection be reused
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	msg := s.redact.String(strings.TrimSpace(strings.ToValidUTF8(string(body), "?")))
	base := fmt.Sprintf("librato: POST %s: HTTP %s", s.path, resp.Status)
	if msg != "" {
		base += ": " + msg
	}
	switch code := resp.StatusCode; {
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return fmt.Errorf("%s: %w", base, outlet.ErrUnauthorized)
	case code == http.StatusTooManyRequests:
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			base += " (Retry-After " + ra + ")"
		}
		return fmt.Errorf("%s: rate limited", base)
	case code >= 500:
		return fmt.Errorf("%s: server error", base)
	default:
		return fmt.Errorf("%s: %w", base, outlet.ErrPermanent)
	}
}
