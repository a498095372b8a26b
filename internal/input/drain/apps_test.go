package drain_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/dynometrics/dynometrics/internal/appauth"
	"github.com/dynometrics/dynometrics/internal/input"
	"github.com/dynometrics/dynometrics/internal/input/drain"
	"github.com/dynometrics/dynometrics/internal/metric"
)

// TestApps: in multi-app mode each body's measurements carry the app its
// credentials authenticated; wrong credentials get 401 and nothing of their
// body reaches the sink.
func TestApps(t *testing.T) {
	keys, err := appauth.New([]string{"0123456789abcdef0123456789abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []string
	p, err := input.NewProcessor(input.SinkFunc(func(ms []metric.Measurement) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range ms {
			got = append(got, fmt.Sprintf("%s/%s/%s=%g", m.App, m.Name, m.Source, m.Value))
		}
	}), input.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := drain.New(p, drain.Config{Apps: keys, User: user, Password: pass}); err == nil {
		t.Error("Apps with User and Password accepted")
	}
	h, err := drain.New(p, drain.Config{Apps: keys})
	if err != nil {
		t.Fatal(err)
	}
	post := func(app, password, line string) int {
		r := httptest.NewRequest(http.MethodPost, drain.LogsPath, strings.NewReader(frame("<190>1 2024-05-01T12:00:00+00:00 host app web.1 - "+line)))
		r.SetBasicAuth(app, password)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	for _, tc := range []struct {
		app, password, line string
		want                int
	}{
		{"billing", keys.Token("billing"), "sample#load=1", http.StatusNoContent},
		{"shop", keys.Token("shop"), "sample#load=2", http.StatusNoContent},
		{"billing", keys.Token("shop"), "sample#load=99", http.StatusUnauthorized},
		{"Shop", keys.Token("Shop"), "sample#load=98", http.StatusUnauthorized},
		{user, pass, "sample#load=97", http.StatusUnauthorized},
	} {
		if code := post(tc.app, tc.password, tc.line); code != tc.want {
			t.Errorf("%s: %d, want %d", tc.line, code, tc.want)
		}
	}
	if err := h.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if want := []string{"billing/load/web.1=1", "shop/load/web.1=2"}; !slices.Equal(got, want) {
		t.Errorf("sink got %q, want %q", got, want)
	}
	if st := h.Stats(); st.Unauthorized != 3 || st.Accepted != 2 {
		t.Errorf("stats %+v: want 3 unauthorized, 2 accepted", st)
	}
}

// TestAppsFrameIDs: each app's Logplex Frame-Ids are its own, in the local
// window and in the shared check (SharedSeen gets the app): the same
// Frame-Id from two apps is two bodies, a retry within one app is dropped.
func TestAppsFrameIDs(t *testing.T) {
	keys, err := appauth.New([]string{"0123456789abcdef0123456789abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var asked, got []string
	p, err := input.NewProcessor(input.SinkFunc(func(ms []metric.Measurement) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range ms {
			got = append(got, fmt.Sprintf("%s/%s=%g", m.App, m.Name, m.Value))
		}
	}), input.Config{})
	if err != nil {
		t.Fatal(err)
	}
	h, err := drain.New(p, drain.Config{Apps: keys, SharedSeen: func(app, id string) bool {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, app+"/"+id)
		return app == "shop" && id == "taken-elsewhere"
	}})
	if err != nil {
		t.Fatal(err)
	}
	send := func(app, id, line string) {
		r := post(h, frame("<190>1 2024-05-01T12:00:00+00:00 host app web.1 - "+line), id,
			func(r *http.Request) { r.SetBasicAuth(app, keys.Token(app)) })
		if r.StatusCode != http.StatusNoContent {
			t.Fatalf("%s %s: %d", app, id, r.StatusCode)
		}
	}
	send("billing", "f1", "count#a=1")
	send("shop", "f1", "count#a=2")                // another app's body with the same Frame-Id
	send("billing", "f1", "count#a=100")           // billing's retry: dropped locally
	send("shop", "taken-elsewhere", "count#a=200") // another worker took shop's
	send("billing", "taken-elsewhere", "count#a=4")
	closeHandler(t, h)
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(got)
	if want := []string{"billing/a=1", "billing/a=4", "shop/a=2"}; !slices.Equal(got, want) {
		t.Errorf("measurements %q, want %q", got, want)
	}
	slices.Sort(asked)
	if want := []string{"billing/f1", "billing/taken-elsewhere", "shop/f1", "shop/taken-elsewhere"}; !slices.Equal(asked, want) {
		t.Errorf("SharedSeen asked %q, want %q", asked, want)
	}
	if st := h.Stats(); st.Duplicates != 1 || st.SharedDups != 1 {
		t.Errorf("stats %+v: want 1 duplicate, 1 shared duplicate", st)
	}
}
