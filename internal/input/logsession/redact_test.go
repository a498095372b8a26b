package logsession

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// TestAPIEchoingCredentials: a Platform API (or something posing as it) that
// echoes the Authorization header in its error id, in each form, never gets
// the key into the log.
func TestAPIEchoingCredentials(t *testing.T) {
	f := newFakeAPI(t)
	f.streams["0"] = linesThenWait()
	echoes := []func(auth string) string{
		func(auth string) string { return auth },                                   // Bearer <key>
		func(auth string) string { return strings.TrimPrefix(auth, "Bearer ") },    // raw
		func(auth string) string { return "https://u:" + apiKey + "@api.example" }, // URL userinfo
	}
	var n atomic.Int32
	next := f.srv.Config.Handler
	f.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		if r.Method != http.MethodPost || i >= 2*len(echoes) {
			next.ServeHTTP(w, r)
			return
		}
		w.WriteHeader([]int{http.StatusUnauthorized, http.StatusInternalServerError}[i%2])
		fmt.Fprintf(w, `{"id":%q,"message":%q}`, echoes[i/2](r.Header.Get("Authorization")), r.Header.Get("Authorization"))
	})
	h := newHarness(t, f, Config{})
	h.run(t, func() bool { return h.tl.Stats().Streams == 1 })
	logs := h.logs.String()
	if strings.Contains(logs, apiKey) || strings.Count(logs, "[redacted]") != 2*len(echoes) {
		t.Fatalf("logs:\n%s", logs)
	}
}
