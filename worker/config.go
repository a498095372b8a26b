package main

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/dynometrics/dynometrics/emitter"
	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/envcfg"
	"github.com/dynometrics/dynometrics/internal/input/drain"
	"github.com/dynometrics/dynometrics/internal/input/logsession"
	"github.com/dynometrics/dynometrics/internal/input/otlp"
	"github.com/dynometrics/dynometrics/internal/input/syslog"
	"github.com/dynometrics/dynometrics/internal/librato"
	"github.com/dynometrics/dynometrics/internal/otlpout"
	"github.com/dynometrics/dynometrics/internal/outlet"
	"github.com/dynometrics/dynometrics/internal/promwrite"
	"github.com/dynometrics/dynometrics/internal/store"
	"github.com/dynometrics/dynometrics/internal/view"
)

// errConfig is wrapped by every configuration error: realMain exits 2 on it.
var errConfig = errors.New("config")

// Config is the worker's environment, composed of the settings each
// component owns (its Env type, with its tags and its Validate); the worker
// itself owns only SHUTDOWN_TIMEOUT and the rules that span components.
type Config struct {
	Drain       drain.Env      `ignored:"true"`
	Fir         otlp.Env       `ignored:"true"`
	LogSession  logsession.Env `ignored:"true"`
	Syslog      syslog.Env     `ignored:"true"`
	Buckets     aggregate.Env  `ignored:"true"`
	Metrics     outlet.Env     `ignored:"true"`
	Librato     librato.Env    `ignored:"true"`
	RemoteWrite promwrite.Env  `ignored:"true"`
	OTLP        otlpout.Env    `ignored:"true"`
	View        view.Env       `ignored:"true"`
	Redis       store.Env      `ignored:"true"`

	ShutdownTimeout time.Duration `envconfig:"SHUTDOWN_TIMEOUT" default:"25s" accepts:"a positive duration, below Heroku's 30s, e.g. 25s" desc:"on SIGTERM: time to flush every bucket and send what is queued"`
}

// A section is one component's variables, as `worker -h` and
// docs/configuration.md group them.
type section struct {
	title string
	spec  any // pointer to an env-tagged struct
}

// sections returns c's parts in the order they are documented.
func (c *Config) sections() []section {
	return []section{
		{"Inputs: HTTPS drain and OTLP receiver (internal/input/drain)", &c.Drain},
		{"Inputs: Fir telemetry drains (internal/input/otlp)", &c.Fir},
		{"Inputs: syslog (internal/input/syslog)", &c.Syslog},
		{"Inputs: log sessions (internal/input/logsession)", &c.LogSession},
		{"Buckets (internal/aggregate)", &c.Buckets},
		{"Every outlet (internal/outlet)", &c.Metrics},
		{"OTLP outlet (internal/otlpout)", &c.OTLP},
		{"Prometheus remote-write outlet (internal/promwrite)", &c.RemoteWrite},
		{"Librato outlet (internal/librato)", &c.Librato},
		{"Live view (internal/view)", &c.View},
		{"Shared state across workers (internal/store)", &c.Redis},
		{"Worker", c},
	}
}

// specs returns the env-tagged structs of c.
func (c *Config) specs() []any {
	var specs []any
	for _, s := range c.sections() {
		specs = append(specs, s.spec)
	}
	return specs
}

// loadConfig reads the environment and checks every variable, and the
// emitter's EMITTER_* variables, before anything starts. Every error wraps
// errConfig, names the variable and what it accepts, and never carries a
// secret's value.
func loadConfig() (Config, error) {
	var c Config
	if err := envcfg.Load(c.specs()...); err != nil {
		return c, wrapConfig(err)
	}
	err := c.validate()
	if _, eerr := emitter.FromEnv(); eerr != nil {
		err = errors.Join(err, fmt.Errorf("%w: %w", errConfig, eerr))
	}
	return c, err
}

// validate runs every component's Validate, then the rules that span
// components, and returns every problem found, each wrapping errConfig.
func (c *Config) validate() error {
	errs := []error{c.Drain.Validate(), c.Fir.Validate(), c.Syslog.Validate(), c.LogSession.Validate(),
		c.Buckets.Validate(), c.Metrics.Validate()}
	if tags, err := c.Metrics.ParsedTags(); err == nil {
		errs = append(errs, c.OTLP.Validate(tags), c.RemoteWrite.Validate(tags), c.Librato.Validate(tags))
	}
	errs = append(errs, c.View.Validate(c.Buckets.Resolution), c.Redis.Validate(c.Buckets.Grace))
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, envcfg.Bad("SHUTDOWN_TIMEOUT", "not positive"))
	}
	if !c.Drain.MultiApp() && strings.Contains(c.Metrics.Prefix, outlet.AppPlaceholder) {
		errs = append(errs, envcfg.Bad("METRICS_PREFIX", "contains "+outlet.AppPlaceholder+", which only multi-app mode (DRAIN_SECRET) fills in"))
	}
	if c.Drain.MultiApp() {
		if tags, err := c.Metrics.ParsedTags(); err == nil && tags["app"] != "" {
			errs = append(errs, envcfg.Bad("METRICS_TAGS", "has a tag \"app\", which multi-app mode (DRAIN_SECRET) sets on every series itself"))
		}
		// REDIS_URL is fine: the shared state carries the app (docs/multi-app.md).
		// The inputs below are not: their lines carry no app credentials.
		if c.Syslog.Addr != "" || c.LogSession.APIKey != "" {
			errs = append(errs, errors.New("DRAIN_SECRET (multi-app mode) authenticates each app on the HTTPS drain and the OTLP receiver only: "+
				"unset SYSLOG_ADDR and HEROKU_API_KEY, whose lines carry no app credentials"))
		}
	}
	if c.View.Password != "" && subtle.ConstantTimeCompare([]byte(c.View.Password), []byte(c.Drain.Password)) == 1 {
		errs = append(errs, errors.New("VIEW_PASSWORD equals DRAIN_PASSWORD: the drain's credentials travel in the drain URL, give the view its own password"))
	}
	return wrapConfig(envcfg.Explain(errors.Join(errs...), c.specs()...))
}

// wrapConfig wraps each of the joined errors in errConfig.
func wrapConfig(err error) error {
	if err == nil {
		return nil
	}
	var out []error
	for _, line := range strings.Split(err.Error(), "\n") {
		out = append(out, fmt.Errorf("%w: %s", errConfig, line))
	}
	return errors.Join(out...)
}

// usageWidth is the widest line `worker -h` prints.
const usageWidth = 100

// printUsage writes the flags and every variable the worker reads, with its
// default and meaning, to w, in lines of at most usageWidth columns.
func printUsage(w io.Writer, flags func(func(name, usage string))) {
	fmt.Fprintf(w, "Usage: worker [-stdin] [-view ADDR] [-version] | worker -drain-url APP [-drain-host HOST]\n\n"+
		"The dynometrics worker turns a Heroku-style log stream into per-dyno metrics.\n"+
		"Every variable, with what it accepts: docs/configuration.md.\n\nFlags:\n")
	flags(func(name, usage string) {
		fmt.Fprintf(w, "  -%s\n", name)
		wrap(w, usage, "      ")
	})
	fmt.Fprintf(w, "\nEnvironment (no outlet configured: buckets are printed to stdout):\n")
	for _, s := range allSections() {
		fmt.Fprintf(w, "\n%s\n", s.title)
		for _, v := range s.vars {
			line := "  " + v.Name
			if v.Default != "" {
				line += " (default " + v.Default + ")"
			}
			fmt.Fprintln(w, line)
			text := v.Desc
			if v.Accepts != "" {
				text += "; accepts " + v.Accepts
			}
			wrap(w, text, "      ")
		}
	}
}

// A varSection is a titled list of variables.
type varSection struct {
	title string
	vars  []envcfg.Var
}

// allSections lists every variable the worker reads: its components' and
// the emitter's (its own health metrics).
func allSections() []varSection {
	var c Config
	var out []varSection
	for _, s := range c.sections() {
		out = append(out, varSection{s.title, envcfg.Vars(s.spec)})
	}
	return append(out, varSection{"The worker's own health metrics (emitter)", emitterVars()})
}

// emitterVars reads the emitter's variables from its usage lines
// (name, default and meaning, tab-separated).
func emitterVars() []envcfg.Var {
	var b strings.Builder
	_ = emitter.PrintEnvUsage(&b)
	var vars []envcfg.Var
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if f := strings.SplitN(line, "\t", 3); len(f) == 3 {
			vars = append(vars, envcfg.Var{Name: f[0], Default: f[1], Desc: f[2]})
		}
	}
	return vars
}

// wrap writes text in lines of at most usageWidth columns, each starting
// with indent; a word longer than a line gets a line of its own.
func wrap(w io.Writer, text, indent string) {
	line := indent
	for _, word := range strings.Fields(text) {
		if len(line) > len(indent) && len(line)+1+len(word) > usageWidth {
			fmt.Fprintln(w, line)
			line = indent
		}
		if len(line) > len(indent) {
			line += " "
		}
		line += word
	}
	if len(line) > len(indent) {
		fmt.Fprintln(w, line)
	}
}
