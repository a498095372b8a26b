package drain

import (
	"io"
	"net/http"
	"time"
)

// CutBodies returns h served as on PORT (see serveCut), for another server
// of the worker (the live view's own address), with timeout as BodyTimeout.
func CutBodies(h http.Handler, timeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { serveCut(h, w, r, timeout) })
}

// serveCut serves r with h so that a client cannot hold a connection by
// sending its body slowly:
//
//   - the body must arrive within timeout of the handler's start
//     (BodyTimeout, whatever the declared size);
//   - an answer written before the body was read to its end (401 without
//     credentials, 404, 405, 413, 503…) ends the read at once and closes the
//     connection. Otherwise net/http would go on reading up to 256 KiB of the
//     unread body after the handler returned, before it even sends the
//     answer, for as long as the client trickles it: 300 unauthenticated
//     slow bodies on /v1/metrics held every connection slot of PORT.
//
// It applies to every path served on PORT (the drain, the OTLP receiver,
// the live view, the mux's own 404), so that no handler has to remember it.
func serveCut(h http.Handler, w http.ResponseWriter, r *http.Request, timeout time.Duration) {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(timeout)) // ErrNotSupported outside a server: nothing to bound
	if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
		h.ServeHTTP(w, r)
		return
	}
	b := &eofBody{ReadCloser: r.Body}
	r.Body = b
	h.ServeHTTP(&cutWriter{ResponseWriter: w, body: b, rc: rc}, r)
}

// eofBody records whether a request body was read to its end.
type eofBody struct {
	io.ReadCloser
	eof bool
}

func (b *eofBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

// cutWriter ends the request's read when the answer starts before the body
// was read to its end.
type cutWriter struct {
	http.ResponseWriter
	body    *eofBody
	rc      *http.ResponseController
	started bool
}

func (c *cutWriter) start() {
	if c.started {
		return
	}
	c.started = true
	if !c.body.eof {
		c.ResponseWriter.Header().Set("Connection", "close")
		_ = c.rc.SetReadDeadline(time.Now())
	}
}

func (c *cutWriter) WriteHeader(code int) {
	if code >= 200 { // 1xx informational answers come before the body
		c.start()
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *cutWriter) Write(p []byte) (int, error) {
	c.start()
	return c.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (c *cutWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
