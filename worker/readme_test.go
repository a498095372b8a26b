package main

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// codeBlocks returns the fenced blocks of README.md in language lang.
func codeBlocks(t *testing.T, lang string) []string {
	t.Helper()
	re := regexp.MustCompile("(?s)```" + regexp.QuoteMeta(lang) + "\n(.*?)```\n")
	var blocks []string
	for _, m := range re.FindAllStringSubmatch(readme(t), -1) {
		blocks = append(blocks, m[1])
	}
	return blocks
}

// TestCIRunsREADMEsTestCommand: .ci/run runs exactly the test command
// README.md gives (its output redirected to a log, to count skipped tests).
func TestCIRunsREADMEsTestCommand(t *testing.T) {
	const cmd = "go test -race ./..."
	if !strings.Contains(readme(t), "```sh\n"+cmd+"\n```") {
		t.Errorf("README.md does not give %q as the test command", cmd)
	}
	ci, err := os.ReadFile("../.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	var runs []string
	for _, line := range strings.Split(string(ci), "\n") {
		if strings.HasPrefix(line, "go test") {
			runs = append(runs, line)
		}
	}
	if want := cmd + ` >"$log" 2>&1`; len(runs) != 1 || runs[0] != want {
		t.Errorf(".ci/run runs %q, want README's test command alone: %q", runs, want)
	}
}

// TestREADMEFirstCommand keeps README's first command the pipeline the
// end-to-end tests run (TestCtrlCOnThePipeline).
func TestREADMEFirstCommand(t *testing.T) {
	sh := codeBlocks(t, "sh")
	if len(sh) == 0 || !strings.Contains(sh[0], "go run ./examples/webapp -demo | METRICS_RESOLUTION=10s go run ./worker -stdin") {
		t.Errorf("README's first command changed: %q", sh)
	}
}

// TestREADMEOtherLanguages runs README's Ruby, Python and Node.js snippets
// (those whose interpreter is installed) and feeds their output to the
// worker, which must find the request, its duration and the sample.
func TestREADMEOtherLanguages(t *testing.T) {
	for _, tc := range []struct{ lang, interp, flag string }{
		{"ruby", "ruby", "-e"}, {"python", "python3", "-c"}, {"js", "node", "-e"},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			blocks := codeBlocks(t, tc.lang)
			if len(blocks) != 1 {
				t.Fatalf("README has %d %s blocks, want 1", len(blocks), tc.lang)
			}
			path, err := exec.LookPath(tc.interp)
			if err != nil {
				t.Skipf("%s is not installed", tc.interp)
			}
			out, err := exec.Command(path, tc.flag, blocks[0]).Output()
			if err != nil {
				t.Fatalf("%s: %v", tc.interp, err)
			}
			clearEnv(t)
			t.Setenv("EMITTER_INTERVAL", "1h")
			var stdout, stderr bytes.Buffer
			if code := realMain([]string{"-stdin"}, bytes.NewReader(out), &stdout, &stderr); code != 0 {
				t.Fatalf("worker: exit %d\n%s", code, stderr.String())
			}
			got := stdout.String()
			for _, want := range []string{" count#http.requests=1\n", " measure#http.request count=1 ", " unit=ms\n", " sample#queue.depth=3\n"} {
				if !strings.Contains(got, want) {
					t.Errorf("the worker's buckets lack %q; snippet printed %q, worker printed:\n%s", want, out, got)
				}
			}
			if strings.Contains(stderr.String(), "count#worker.input.rejected_pairs=1") {
				t.Errorf("the worker rejected a pair:\n%s", stderr.String())
			}
		})
	}
}
