// Package envcfg reads the environment into the env-tagged Config structs
// the components own, and renders what is wrong with it.
//
// Each component declares its variables as struct fields:
//
//	Addr string `envconfig:"SYSLOG_ADDR" accepts:"host:port or :port, e.g. :6514" desc:"syslog TCP listen address"`
//
// envconfig (github.com/kelseyhightower/envconfig) fills them in; the
// component's Validate returns an *Error (the variable and what is wrong)
// for a value it refuses, or a plain error for a rule over several
// variables. Explain turns every *Error into one line such as
//
//	SYSLOG_ADDR="x": not host:port; want host:port or :port, e.g. :6514
//
// quoting the value as set (a URL without credentials or query, a variable
// tagged secret:"true" never), and adding what the variable accepts from its
// tag. Vars lists the variables, for `worker -h` and docs/configuration.md.
package envcfg

import (
	"cmp"
	"errors"
	"fmt"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"

	"github.com/dynometrics/dynometrics/internal/redact"
	"github.com/kelseyhightower/envconfig"
)

// Var is one environment variable as its struct tags declare it.
type Var struct {
	Name    string // the envconfig tag
	Default string // the default tag ("" for none)
	Desc    string // the desc tag: what it does
	Accepts string // the accepts tag: what values it accepts
	Secret  bool   // secret:"true": its value is never shown

	value reflect.Value // the field, when read from a spec
}

// Vars returns the variables of spec, a pointer to a struct, in field order;
// fields tagged ignored:"true" or without an envconfig tag are left out.
func Vars(spec any) []Var {
	rv := reflect.ValueOf(spec).Elem()
	var vars []Var
	for i := 0; i < rv.NumField(); i++ {
		f := rv.Type().Field(i)
		name := f.Tag.Get("envconfig")
		if name == "" || f.Tag.Get("ignored") == "true" {
			continue
		}
		vars = append(vars, Var{Name: name, Default: f.Tag.Get("default"), Desc: f.Tag.Get("desc"),
			Accepts: f.Tag.Get("accepts"), Secret: f.Tag.Get("secret") == "true", value: rv.Field(i)})
	}
	return vars
}

// Load fills each spec (pointers to env-tagged structs) from the
// environment. A value that does not parse (a duration, a number, a
// boolean) is an error naming the variable, its value unless secret, and
// what it accepts. Every spec is read; the errors are joined.
func Load(specs ...any) error {
	var errs []error
	for _, spec := range specs {
		err := envconfig.Process("", spec)
		var pe *envconfig.ParseError
		if !errors.As(err, &pe) {
			errs = append(errs, err) // nil when spec loaded: errors.Join drops it
			continue
		}
		v, _ := find(pe.KeyName, spec)
		errs = append(errs, fmt.Errorf("%s: not a %s; want %s", v.shown(pe.KeyName, pe.Value), cmp.Or(typeWords[pe.TypeName], pe.TypeName), v.Accepts))
	}
	return errors.Join(errs...)
}

// shown is `NAME="value"`, or `NAME (value not shown)` for a secret.
func (v Var) shown(name, value string) string {
	if v.Secret {
		return name + " (value not shown)"
	}
	return name + "=" + strconv.Quote(value)
}

// typeWords name the Go types envconfig reports in words; others keep their name.
var typeWords = map[string]string{"Duration": "duration", "time.Duration": "duration", "bool": "boolean",
	"int": "whole number", "int64": "whole number", "uint": "whole number"}

// Error is a value a component refuses: the variable and what is wrong with
// it (never the value itself; Explain adds it where it may be shown).
type Error struct {
	Var     string
	Problem string
}

// Error returns "VAR: problem".
func (e *Error) Error() string { return e.Var + ": " + e.Problem }

// Bad returns an *Error for the variable name.
func Bad(name, format string, args ...any) error {
	return &Error{Var: name, Problem: fmt.Sprintf(format, args...)}
}

// Explain rewrites every *Error in err (a single error or a tree of joined
// ones) as `VAR="value": problem; want <accepts>`, the variable found in
// specs, and returns the lines joined again; other errors are kept as they
// are. The value is the environment's, else the field's; a secret's is not
// shown, a URL's credentials and query are cut.
func Explain(err error, specs ...any) error {
	var out []error
	for _, leaf := range leaves(err) {
		var e *Error
		if !errors.As(leaf, &e) {
			out = append(out, leaf)
			continue
		}
		v, ok := find(e.Var, specs...)
		if !ok {
			out = append(out, e)
			continue
		}
		line := v.shown(e.Var, value(v)) + ": " + e.Problem
		if v.Accepts != "" {
			line += "; want " + v.Accepts
		}
		out = append(out, errors.New(line))
	}
	return errors.Join(out...)
}

func leaves(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, leaves(e)...)
		}
		return out
	}
	return []error{err}
}

func find(name string, specs ...any) (Var, bool) {
	for _, spec := range specs {
		for _, v := range Vars(spec) {
			if v.Name == name {
				return v, true
			}
		}
	}
	return Var{}, false
}

// value is v as set in the environment, else as its field holds it, a URL
// without its credentials, query and fragment (redact.URL).
func value(v Var) string {
	s, ok := os.LookupEnv(v.Name)
	if !ok && v.value.IsValid() {
		s = fmt.Sprint(v.value.Interface()) // a time.Duration as its String
	}
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			return "…"
		}
		return redact.URL(u)
	}
	return s
}
