package main

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/dynometrics/dynometrics/internal/testproc"
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

// testCommand is README's test command: one line per module of the
// repository (the main module and the e2e test module).
var testCommand = []string{"go test -race ./...", "go -C e2e test -race ./..."}

// TestCIRunsREADMEsTestCommand: README.md gives the test command, it tests
// every module in the repository, and .ci/run runs exactly it (its output
// redirected to a log, to count skipped tests).
func TestCIRunsREADMEsTestCommand(t *testing.T) {
	block := "```sh\n" + strings.Join(testCommand, "\n") + "\n```"
	if !strings.Contains(readme(t), block) {
		t.Errorf("README.md does not give the test command %q", block)
	}
	// Every go.mod below the root is a module that ./... does not reach.
	tested := map[string]bool{".": true}
	for _, c := range testCommand[1:] {
		f := strings.Fields(c)
		if len(f) < 3 || f[1] != "-C" {
			t.Fatalf("test command %q: want go -C DIR test ...", c)
		}
		tested[f[2]] = true
	}
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.Name() == "go.mod" {
			dir, _ := filepath.Rel("..", filepath.Dir(path))
			if !tested[dir] {
				t.Errorf("module %s (%s) is not in README's test command", dir, path)
			}
			delete(tested, dir)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for dir := range tested {
		t.Errorf("README's test command tests %s, which holds no go.mod", dir)
	}
	ci, err := os.ReadFile("../.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	var runs []string
	for _, line := range strings.Split(string(ci), "\n") {
		if strings.HasPrefix(line, "go test") || strings.HasPrefix(line, "go -C ") && strings.Contains(line, " test ") {
			runs = append(runs, line)
		}
	}
	// Each line runs word for word, its output sent to a log (and perhaps
	// in the background, beside the other module's).
	var cmds []string
	for _, r := range runs {
		cmds = append(cmds, ciRedirect.ReplaceAllString(r, ""))
	}
	if !slices.Equal(cmds, testCommand) {
		t.Errorf(".ci/run runs %q, want README's test command alone: %q", runs, testCommand)
	}
}

// ciRedirect is what .ci/run may add after a line of the test command.
var ciRedirect = regexp.MustCompile(` >>?"\$log[.a-z0-9]*" 2>&1( &)?$`)

// maxREADME is the most README.md may weigh: a page a new user reads, with
// reference material in docs/.
const maxREADME = 20_000

// TestREADMESize keeps README.md at most maxREADME bytes.
func TestREADMESize(t *testing.T) {
	if n := len(readme(t)); n > maxREADME {
		t.Errorf("README.md is %d bytes, at most %d: move reference material to docs/", n, maxREADME)
	}
}

// mdLink finds the targets of Markdown links and images: [text](target).
var mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// TestDocLinksResolve: every relative link in README.md and docs/*.md names
// a file or directory that exists, and every #anchor names a heading of the
// file it points into.
func TestDocLinksResolve(t *testing.T) {
	docs, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files := append([]string{"../README.md"}, docs...)
	checked := 0
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mdLink.FindAllStringSubmatch(string(b), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, anchor, _ := strings.Cut(target, "#")
			resolved := file
			if path != "" {
				resolved = filepath.Join(filepath.Dir(file), path)
				if _, err := os.Stat(resolved); err != nil {
					t.Errorf("%s links to %s, which does not exist", file, target)
					continue
				}
			}
			if anchor != "" && strings.HasSuffix(resolved, ".md") && !slices.Contains(anchors(t, resolved), anchor) {
				t.Errorf("%s links to %s: %s has no heading #%s", file, target, resolved, anchor)
			}
			checked++
		}
	}
	if checked < 10 {
		t.Errorf("only %d relative links found in README.md and docs/: is mdLink broken?", checked)
	}
}

// anchors returns the GitHub anchors of the headings of a Markdown file:
// lower case, spaces to hyphens, punctuation other than - and _ dropped.
func anchors(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	inFence := false
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "```") {
			inFence = !inFence
		}
		if inFence || !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#")))
		var a strings.Builder
		for _, r := range h {
			switch {
			case r == ' ':
				a.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				a.WriteRune(r)
			}
		}
		out = append(out, a.String())
	}
	return out
}

// TestREADMEFirstCommand keeps README's first commands the ones the
// end-to-end tests run (TestCtrlCOnThePipeline, TestFirstBucketNoSpike):
// both binaries built first, then the pipeline of built binaries, so that
// the app's lines do not wait in the pipe for the worker's build.
func TestREADMEFirstCommand(t *testing.T) {
	sh := codeBlocks(t, "sh")
	if len(sh) == 0 {
		t.Fatal("README has no sh block")
	}
	build := strings.Index(sh[0], "\ngo build -o bin/ ./worker ./examples/webapp\n")
	pipe := strings.Index(sh[0], "\nbin/webapp -demo | METRICS_RESOLUTION=10s bin/worker -stdin")
	if build < 0 || pipe < build || strings.Contains(sh[0], "go run") {
		t.Errorf("README's first command changed: %q", sh[0])
	}
}

// TestREADMEOtherLanguages runs README's Ruby, Python and Node.js snippets
// (skipped where an interpreter is missing, failed when CI=true) and feeds their output to the
// worker, which must find the request, its duration and the sample.
func TestREADMEOtherLanguages(t *testing.T) {
	for _, tc := range []struct{ lang, interp, pkg, flag string }{
		{"ruby", "ruby", "ruby", "-e"}, {"python", "python3", "python3", "-c"}, {"js", "node", "nodejs", "-e"},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			blocks := codeBlocks(t, tc.lang)
			if len(blocks) != 1 {
				t.Fatalf("README has %d %s blocks, want 1", len(blocks), tc.lang)
			}
			path, err := exec.LookPath(tc.interp)
			if err != nil {
				// .ci/run installs all three (Debian's ruby, python3, nodejs).
				testproc.Missing(t, tc.interp+" is not installed (apt-get install "+tc.pkg+")")
				return
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
