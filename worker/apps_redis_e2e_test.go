package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/librato/libratotest"
	"github.com/dynometrics/dynometrics/internal/otlpout/otlptest"
	"github.com/dynometrics/dynometrics/internal/store/redistest"
)

// appsPartitions is REDIS_PARTITIONS in TestSharedStateManyApps.
const appsPartitions = 4

// appSender posts, for each app, bodies of 10 lines every 20 ms to a random
// live worker with that app's credentials, until stop is closed. Both apps
// use the same Frame-Ids ("frame-000001", …): each app's are its own. Every
// 5th body is posted again, with the same Frame-Id, to the other worker (a
// Logplex retry landing elsewhere): counted once.
type appSender struct {
	mu    sync.Mutex
	live  []*proc
	apps  []string
	pass  map[string]string
	o     map[string]*oracle
	stop  chan struct{}
	done  chan struct{}
	fails int
}

func (s *appSender) set(live ...*proc) {
	s.mu.Lock()
	s.live = live
	s.mu.Unlock()
}

func (s *appSender) run() {
	defer close(s.done)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; ; i++ {
		select {
		case <-s.stop:
			return
		case <-time.After(20 * time.Millisecond):
		}
		for _, app := range s.apps {
			s.mu.Lock()
			live := slices.Clone(s.live)
			s.mu.Unlock()
			id := fmt.Sprintf("frame-%06d", i)
			body := s.o[app].body(rng, 10)
			first := rng.IntN(len(live))
			for try := 0; !postAs(live[(first+try)%len(live)].url, app, s.pass[app], id, body); try++ {
				s.mu.Lock()
				s.fails++
				live = slices.Clone(s.live)
				s.mu.Unlock()
				select {
				case <-s.stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
			if i%5 == 0 && len(live) > 1 {
				postAs(live[(first+1)%len(live)].url, app, s.pass[app], id, body) // a duplicate
			}
		}
	}
}

// postAs posts body as user with a Frame-Id and reports whether it was
// taken (2xx).
func postAs(url, user, pass, frameID string, body []byte) bool {
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.SetBasicAuth(user, pass)
	req.Header.Set("Content-Type", "application/logplex-1")
	req.Header.Set("Logplex-Frame-Id", frameID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode/100 == 2
}

// TestSharedStateManyApps: multi-app mode (DRAIN_SECRET) with shared state.
// Two worker processes share one real redis-server; two apps post corpora
// with the same metric and dyno names (and the same Frame-Ids) through their
// own credentials to both workers; one worker is restarted (SIGTERM, a new
// process) in the middle of a bucket. The strict fake Librato gets every
// (app, name, source, bucket) exactly once with the exact values of an
// independent reference computed from what was posted, and the OTLP receiver
// (delta temporality, one resource per app) gets each (app, source,
// bucket)'s counter sum exactly once.
func TestSharedStateManyApps(t *testing.T) {
	t.Parallel() // waits on the clock, not the CPU
	bin := buildBinary(t, ".")
	srv := redistest.Start(t)
	fake := libratotest.New(t, libratotest.Options{User: testLUser, Token: testLToken})
	otlpRecv := otlptest.New(t, otlptest.Options{})
	// Two apps whose req and lat series of every dyno share partitions.
	apps := []string{"billing"}
	for i := 0; len(apps) < 2; i++ {
		cand := fmt.Sprintf("shop-%d", i)
		same := true
		for _, name := range []string{"req", "lat"} {
			for d := 1; d <= 4; d++ {
				src := fmt.Sprintf("web.%d", d)
				same = same && partitionOf(cand, name, src, appsPartitions) == partitionOf(apps[0], name, src, appsPartitions)
			}
		}
		if same {
			apps = append(apps, cand)
		}
	}
	keys := keyring(t, appSecretNew)
	env := []string{
		"DRAIN_USER=", "DRAIN_PASSWORD=", "DRAIN_SECRET=" + appSecretNew, "METRICS_PREFIX=us-east.prod.{app}",
		"METRICS_RESOLUTION=" + e2eRes.String(), "METRICS_GRACE=" + e2eGrace.String(),
		"REDIS_URL=" + srv.URL, "REDIS_HANDOVER=" + e2eHandover.String(), fmt.Sprintf("REDIS_PARTITIONS=%d", appsPartitions),
		"LIBRATO_USER=" + testLUser, "LIBRATO_TOKEN=" + testLToken, "LIBRATO_URL=" + fake.URL,
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + otlpRecv.URL, "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta",
		"SHUTDOWN_TIMEOUT=10s", "EMITTER_INTERVAL=1h",
	}
	a := startProc(t, bin, env)
	b := startProc(t, bin, env)
	s := &appSender{apps: apps, pass: map[string]string{}, o: map[string]*oracle{}, stop: make(chan struct{}), done: make(chan struct{})}
	for _, app := range apps {
		s.pass[app] = keys.Token(app)
		s.o[app] = newOracle()
	}
	s.set(a, b)
	go s.run()

	// Restart a in the middle of a bucket.
	time.Sleep(time.Until(time.Now().Truncate(e2eRes).Add(2*e2eRes + e2eRes/2)))
	s.set(b)
	a.term(t)
	a2 := startProc(t, bin, env)
	s.set(a2, b)
	time.Sleep(3 * e2eRes)
	close(s.stop)
	<-s.done

	want := 0
	for _, o := range s.o {
		o.mu.Lock()
		want += 5 * len(o.reqs)
		o.mu.Unlock()
	}
	waitFor(t, fmt.Sprintf("%d measurements at the fake Librato", want), 20*time.Second, func() bool { return len(fake.Measurements()) >= want })
	time.Sleep(e2eRes) // anything sent twice would arrive now
	a2.term(t)
	b.term(t)

	checkAppsLibrato(t, fake, s.o)
	checkAppsOTLP(t, otlpRecv, s.o)
	for _, p := range []*proc{a, a2, b} {
		out := p.stderr.String()
		for _, bad := range []string{"level=ERROR", "s3cret", s.pass[apps[0]], s.pass[apps[1]]} {
			if strings.Contains(out, bad) {
				t.Errorf("worker log has an error or a secret (%q):\n%s", bad, out)
			}
		}
	}
	n := 0
	for _, o := range s.o {
		n += o.n
	}
	t.Logf("apps %q: %d lines, %d refused POSTs retried", apps, n, s.fails)
}

// checkAppsLibrato checks that the fake received, for every (app, series,
// bucket) an app's oracle has, exactly one value of each gauge, equal to
// the whole bucket's aggregate of that app alone, and nothing else.
func checkAppsLibrato(t *testing.T, fake *libratotest.Server, os map[string]*oracle) {
	t.Helper()
	byPrefix := map[string]*oracle{}
	for app, o := range os {
		byPrefix["us-east.prod."+app+"."] = o
	}
	checkLibratoOracles(t, fake, byPrefix, false)
}

// checkAppsOTLP checks that the OTLP receiver got, for every (app, source,
// bucket), delta sums of req under the app's resource (service.name)
// adding up to exactly what that app sent: a bucket delivered twice, or two
// apps merged, shows as a wrong sum.
func checkAppsOTLP(t *testing.T, r *otlptest.Receiver, os map[string]*oracle) {
	t.Helper()
	type key struct {
		app string
		e2eKey
	}
	got := map[key]float64{}
	for _, p := range r.Points() {
		if p.Name != "us-east.prod.req" {
			continue
		}
		if p.Temporality != "delta" {
			t.Errorf("req point %s in %q temporality, want delta", p.Key(), p.Temporality)
		}
		got[key{p.Resource["service.name"], e2eKey{p.Attrs["source"], p.Time.Add(-e2eRes).Unix()}}] += p.Value
	}
	bad, total := 0, 0
	for app, o := range os {
		o.mu.Lock()
		for k, want := range o.reqs {
			total++
			kk := key{app, k}
			if g := got[kk]; g != want {
				if bad++; bad <= 10 {
					t.Errorf("OTLP %s req{source=%s} bucket %d: delta sum %v, want %v", app, k.source, k.start, g, want)
				}
			}
			delete(got, kk)
		}
		o.mu.Unlock()
	}
	for k, v := range got {
		if bad++; bad <= 20 {
			t.Errorf("OTLP %s req{source=%s} bucket %d: %v, nothing was sent", k.app, k.source, k.start, v)
		}
	}
	if bad > 0 {
		t.Errorf("OTLP: %d wrong, missing or unexpected sums over %d (app, source, bucket)s", bad, total)
	}
}
