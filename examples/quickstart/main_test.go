package main

import (
	"bytes"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSIGTERMKeepsTheLastCounts runs the README's program as a built binary
// with a statsd listener (which makes the final emission slower than a bare
// return from main), sends it requests, stops it with SIGTERM and finds
// every request in what it printed. Issue 12 lost the final interval 5 times
// in 5 with `go em.Run(ctx)`.
func TestSIGTERMKeepsTheLastCounts(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "quickstart")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for run := range 5 {
		n := 3 + run
		port := freePort(t)
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), "PORT="+port, "EMITTER_INTERVAL=1h", "EMITTER_STATSD_ADDR=127.0.0.1:0")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		url := "http://127.0.0.1:" + port + "/"
		deadline := time.Now().Add(10 * time.Second)
		for sent := 0; sent < n; {
			r, err := http.Get(url)
			if err != nil {
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					t.Fatalf("app not answering: %v\n%s", err, stderr.String())
				}
				time.Sleep(10 * time.Millisecond)
				continue
			}
			r.Body.Close()
			sent++
		}
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("run %d: exit: %v\n%s", run, err, stderr.String())
		}
		got := stdout.String()
		fields := strings.Fields(got)
		for _, want := range []string{"count#http.requests=" + strconv.Itoa(n), "count#http.request.count=" + strconv.Itoa(n)} {
			if !contains(fields, want) {
				t.Fatalf("run %d: after %d requests and SIGTERM the app printed %q, lacking %s", run, n, got, want)
			}
		}
	}
}

// TestREADMEShowsThisProgram keeps README.md's emitter code compiled: the
// README shows this file verbatim.
func TestREADMEShowsThisProgram(t *testing.T) {
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	// From the package clause on: the doc comment is for go doc.
	code := string(src[bytes.Index(src, []byte("package main")):])
	if !strings.Contains(string(readme), "```go\n"+code+"```\n") {
		t.Errorf("README.md does not show examples/quickstart/main.go verbatim (from `package main`); copy it into the README's go block")
	}
}

func contains(fields []string, s string) bool {
	for _, f := range fields {
		if f == s {
			return true
		}
	}
	return false
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}
