package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/dynometrics/dynometrics/internal/envcfg"
)

// appJSON is the part of app.json (the Heroku Button's manifest) checked
// here.
type appJSON struct {
	Name       string `json:"name"`
	Repository string `json:"repository"`
	Buildpacks []struct {
		URL string `json:"url"`
	} `json:"buildpacks"`
	Formation map[string]struct {
		Quantity int `json:"quantity"`
	} `json:"formation"`
	Env map[string]struct {
		Description string `json:"description"`
		Value       string `json:"value"`
		Generator   string `json:"generator"`
		Required    *bool  `json:"required"`
	} `json:"env"`
}

// TestAppJSON: the Heroku Button's manifest parses, names only variables the
// worker reads, asks for exactly the ones a drain app needs, and the values
// it sets (or generates) make a valid drain configuration with Heroku's PORT.
func TestAppJSON(t *testing.T) {
	b, err := os.ReadFile("../app.json")
	if err != nil {
		t.Fatal(err)
	}
	var a appJSON
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&a); err != nil {
		t.Fatalf("app.json: %v", err)
	}
	if a.Name == "" || a.Repository == "" || len(a.Buildpacks) != 1 || a.Buildpacks[0].URL != "heroku/go" || a.Formation["web"].Quantity != 1 {
		t.Errorf("app.json: name, repository, the heroku/go buildpack and one web dyno are required: %+v", a)
	}
	clearEnv(t)
	var required []string
	for name, v := range a.Env {
		if !slices.Contains(allVarNames(), name) {
			t.Errorf("app.json sets %s, which the worker does not read", name)
		}
		if v.Description == "" {
			t.Errorf("app.json: %s has no description", name)
		}
		if v.Required == nil || *v.Required {
			required = append(required, name)
			if v.Value == "" && v.Generator == "" {
				t.Errorf("app.json: required %s has neither a value nor a generator", name)
			}
		}
		switch {
		case v.Generator == "secret":
			buf := make([]byte, 32)
			rand.Read(buf)
			t.Setenv(name, hex.EncodeToString(buf)) // what Heroku generates: 64 hex digits
		case v.Generator != "":
			t.Errorf("app.json: %s: unknown generator %q", name, v.Generator)
		case v.Value != "":
			t.Setenv(name, v.Value)
		}
	}
	slices.Sort(required)
	if want := []string{"DRAIN_PASSWORD", "DRAIN_USER"}; !slices.Equal(required, want) {
		t.Errorf("app.json requires %v, want %v (what a drain app cannot run without)", required, want)
	}
	t.Setenv("PORT", "5000") // Heroku sets it for web dynos
	cfg, err := loadConfig()
	if err != nil {
		t.Fatalf("the configuration app.json makes is refused: %v", err)
	}
	if _, err := newWorker(cfg, options{stdout: os.Stdout}); err != nil {
		t.Fatalf("the configuration app.json makes does not build a worker: %v", err)
	}
}

// notOnTheButton are variables README's recipes set that app.json does not
// offer, and why.
var notOnTheButton = map[string]string{
	"PORT":        "Heroku sets it",
	"REDIS_URL":   "the Key-Value Store add-on sets it",
	"SYSLOG_ADDR": "a Heroku app cannot listen on a raw TCP port",
}

// TestAppJSONOffersREADMEsVariables: every worker variable README's recipes
// set (NAME=value) can be set from the Heroku Button's form.
func TestAppJSONOffersREADMEsVariables(t *testing.T) {
	b, err := os.ReadFile("../app.json")
	if err != nil {
		t.Fatal(err)
	}
	var a appJSON
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var c Config
	var own []string
	for _, s := range c.sections() {
		for _, v := range envcfg.Vars(s.spec) {
			own = append(own, v.Name)
		}
	}
	used := map[string]bool{}
	for _, m := range regexp.MustCompile(`\b([A-Z][A-Z0-9_]+)=`).FindAllStringSubmatch(string(readme), -1) {
		name := m[1]
		if !slices.Contains(own, name) || notOnTheButton[name] != "" || used[name] {
			continue
		}
		used[name] = true
		if _, ok := a.Env[name]; !ok {
			t.Errorf("README's recipes set %s, which app.json does not offer", name)
		}
	}
	if len(used) < 5 {
		t.Errorf("found only %d variables set in README: is the pattern still right?", len(used))
	}
}

// TestProcfileAndGoMod: the committed Procfile runs the worker as the web
// process of a metrics app (what the Heroku Button and `git push heroku`
// deploy), go.mod tells the Go buildpack to build it and nothing else, and the go line names
// a minor release, whose newest patch the buildpack picks.
func TestProcfileAndGoMod(t *testing.T) {
	proc, err := os.ReadFile("../Procfile")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(proc)) != "web: bin/worker" {
		t.Errorf("Procfile = %q, want web: bin/worker", proc)
	}
	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	// The buildpack builds exactly what the Procfile runs: every package
	// of the install line costs build time on every push.
	if got := herokuInstall(string(mod)); !slices.Equal(got, []string{"./worker"}) {
		t.Errorf("go.mod's // +heroku install line builds %q; the Procfile runs bin/worker alone: want [./worker]", got)
	}
	// The go line must carry the patch our dependencies require (go mod tidy
	// writes go 1.26.0); the buildpack's own directive names the major
	// version only, so that it builds with its newest 1.26.x.
	goLine := regexp.MustCompile(`(?m)^go (\S+)$`).FindStringSubmatch(string(mod))
	directive := regexp.MustCompile(`(?m)^// \+heroku goVersion (\S+)$`).FindStringSubmatch(string(mod))
	switch {
	case goLine == nil:
		t.Errorf("go.mod has no go line")
	case directive == nil || !regexp.MustCompile(`^go1\.\d+$`).MatchString(directive[1]):
		t.Errorf("go.mod's // +heroku goVersion line %q: want a major version only (go1.26), so the Go buildpack builds with its newest 1.26.x", directive)
	case !strings.HasPrefix(goLine[1], strings.TrimPrefix(directive[1], "go")+"."):
		t.Errorf("go.mod's go line %s is not in the buildpack's goVersion %s", goLine[1], directive[1])
	}
}

// herokuInstall returns the packages of go.mod's `// +heroku install` line,
// as the Go buildpack reads them.
func herokuInstall(mod string) []string {
	for _, l := range strings.Split(mod, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(l), "// +heroku install "); ok {
			return strings.Fields(rest)
		}
	}
	return nil
}

// TestOwnModuleGetsBinWorker is the README's same-app set-up: a user's own
// module that imports the emitter, lists the worker as a tool and in its
// `// +heroku install` line gets both binaries from `go install`, as the Go
// buildpack runs it. Offline: this repository stands in for the published
// module through a replace directive.
func TestOwnModuleGetsBinWorker(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	mod := `// +heroku install . github.com/dynometrics/dynometrics/worker
module example.com/myapp

go 1.26

require github.com/dynometrics/dynometrics v0.0.0

tool github.com/dynometrics/dynometrics/worker

// Only for this test: the published module is required instead.
replace github.com/dynometrics/dynometrics => ` + root + "\n"
	src, err := os.ReadFile("../examples/quickstart/main.go")
	if err != nil {
		t.Fatal(err)
	}
	// The checksums `go get` would have fetched from sum.golang.org.
	sums, err := os.ReadFile("../go.sum")
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"go.mod": []byte(mod), "go.sum": sums, "main.go": src, "Procfile": []byte("web: bin/myapp\nworker: bin/worker\n")} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gobin := filepath.Join(dir, "bin")
	gocmd := func(goproxy, goflags string, args ...string) {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS="+goflags, "GOPROXY="+goproxy, "GOTOOLCHAIN=local", "GOWORK=off", "GOBIN="+gobin)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// go mod tidy runs where the user runs it, on a machine that reaches the
	// module proxy: it needs the go.mod files of modules deeper in the graph
	// (our dependencies' test dependencies) that this module's own build never
	// downloads, so it cannot run offline on a fresh machine. Everything after
	// it, like the buildpack's build, runs offline.
	gocmd(goEnv(t, "GOPROXY"), "-mod=mod", "mod", "tidy")
	// What the buildpack runs: go install -tags heroku <the +heroku install packages>.
	tidied, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	pkgs := herokuInstall(string(tidied))
	if len(pkgs) != 2 {
		t.Fatalf("go mod tidy lost the // +heroku install line:\n%s", tidied)
	}
	gocmd("off", "-mod=readonly", append([]string{"install", "-tags", "heroku"}, pkgs...)...)
	for _, bin := range []string{"myapp", "worker"} {
		if _, err := os.Stat(filepath.Join(gobin, bin)); err != nil {
			t.Errorf("bin/%s was not built: %v", bin, err)
		}
	}
	out, err := exec.Command(filepath.Join(gobin, "worker"), "-version").Output()
	if err != nil || !strings.HasPrefix(string(out), "worker ") {
		t.Errorf("bin/worker -version: %q, %v", out, err)
	}
}

// goEnv returns go env's value of key, as the go command would use it.
func goEnv(t *testing.T, key string) string {
	t.Helper()
	out, err := exec.Command("go", "env", key).Output()
	if err != nil {
		t.Fatalf("go env %s: %v", key, err)
	}
	return strings.TrimSpace(string(out))
}
