package browser_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/dynometrics/dynometrics/internal/appauth"
	"github.com/dynometrics/dynometrics/internal/testproc"
)

// TestViewAppSelector runs the built worker in multi-app mode (DRAIN_SECRET)
// with -view, posts two apps' lines with a metric name in common through
// their own drain URLs, and checks in headless Chromium that the page offers
// both apps, lists the first app's metrics, and after choosing the other app
// lists and charts that app's, with its own value.
func TestViewAppSelector(t *testing.T) {
	ctx := newBrowser(t, 1200, 900)
	if ctx == nil {
		return
	}
	const secret = "s3cret-view-0123456789abcdef0123456789abcdef"
	keys, err := appauth.New([]string{secret})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	cmd := exec.Command(buildWorker(t), "-view", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "PORT="+port, "BIND_ADDR=127.0.0.1", "DRAIN_SECRET="+secret, "DRAIN_USER=", "DRAIN_PASSWORD=",
		"METRICS_RESOLUTION=10s", "METRICS_GRACE=1s", "EMITTER_INTERVAL=1h")
	cmd.Stdout = io.Discard
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stderr := &testproc.LimitedBuffer{}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		pw.Close()
		if t.Failed() {
			t.Logf("worker stderr:\n%s", stderr.String())
		}
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			fmt.Fprintln(stderr, sc.Text())
			if m := liveViewURL.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	var viewURL string
	select {
	case viewURL = <-found:
	case <-time.After(30 * time.Second):
		t.Fatalf("no live view URL:\n%s", stderr.String())
	}
	at := time.Now().UTC().Truncate(10 * time.Second).Add(-20 * time.Second)
	for app, pairs := range map[string]string{"billing": "sample#load=1 sample#billing_only=5", "shop": "sample#load=2 sample#shop_only=7"} {
		msg := fmt.Sprintf("<190>1 %s host app web.1 - %s", syslogTime(at.Add(time.Second)), pairs)
		req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:"+port+"/logs", bytes.NewReader([]byte(fmt.Sprintf("%d %s\n", len(msg)+1, msg))))
		req.SetBasicAuth(app, keys.Token(app))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("POST as %s: %s", app, resp.Status)
		}
	}
	type page struct {
		Hidden  bool
		Options []string
		Value   string
		List    []string
		Load    []*float64 // the load chart's web.1 line
	}
	const state = `(() => {
		const sel = document.querySelector('#app');
		const load = (window.dynoview ? dynoview.charts() : []).find((c) => c.name === 'load');
		return { hidden: sel.hidden, options: [...sel.options].map((o) => o.value), value: sel.value,
			list: [...document.querySelectorAll('#list li')].map((li) => li.dataset.name),
			load: load && load.data ? load.data[2] : null };
	})()`
	wait := func(what string, cond func(p page) bool) page {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			p, err := chromedp.Run(ctx, chromedp.Evaluate[page](state))
			if err != nil {
				t.Fatal(err)
			}
			if cond(p) {
				return p
			}
			if time.Now().After(deadline) {
				t.Fatalf("waiting for %s: page %+v", what, p)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	loadIs := func(p page, v float64) bool {
		return len(p.Load) > 0 && p.Load[len(p.Load)-1] != nil && *p.Load[len(p.Load)-1] == v
	}
	if _, err := chromedp.Run(ctx, chromedp.Navigate(viewURL)); err != nil {
		t.Fatal(err)
	}
	wait("billing's metrics", func(p page) bool {
		return !p.Hidden && slices.Equal(p.Options, []string{"billing", "shop"}) && p.Value == "billing" &&
			slices.Equal(p.List, []string{"billing_only", "load"}) && loadIs(p, 1)
	})
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { const s = document.querySelector('#app'); s.value = 'shop'; s.dispatchEvent(new Event('change')); return true })()`)); err != nil {
		t.Fatal(err)
	}
	wait("shop's metrics after choosing shop", func(p page) bool {
		return p.Value == "shop" && slices.Equal(p.List, []string{"load", "shop_only"}) && loadIs(p, 2)
	})
}
