package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/dynometrics/dynometrics/emitter"
	"github.com/dynometrics/dynometrics/internal/envcfg"
	"github.com/dynometrics/dynometrics/internal/outlet"
)

// clearEnv unsets every variable the worker and the emitter read, for the
// duration of the test.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, n := range allVarNames() {
		t.Setenv(n, "")
		os.Unsetenv(n)
	}
}

// allVarNames lists every variable the worker reads, the emitter's too.
func allVarNames() []string {
	var names []string
	for _, s := range allSections() {
		for _, v := range s.vars {
			names = append(names, v.Name)
		}
	}
	return names
}

// ownVars lists the worker's own variables (its components'), not the
// emitter's.
func ownVars() []envcfg.Var {
	var c Config
	var vars []envcfg.Var
	for _, s := range c.sections() {
		vars = append(vars, envcfg.Vars(s.spec)...)
	}
	return vars
}

// The secrets of the table below: none may appear in any output.
const (
	secretPass  = "s3cret-pass"
	secretToken = "s3cret-token"
	secretDrain = "s3cret-drain-0123456789abcdef0123456789"
)

// TestConfigErrorsNameTheVariable runs the worker with one bad variable (or
// combination) at a time: it exits 2 before starting anything, and the error
// names the variable, its value unless secret, and what is accepted.
func TestConfigErrorsNameTheVariable(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeCert(t, dir)
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	const rw = "http://127.0.0.1:9090/api/v1/write"
	type env = map[string]string
	tests := map[string]struct {
		env  env
		want []string // each must appear in stderr
	}{
		"PORT not a number":     {env{"PORT": "http", "DRAIN_USER": "u", "DRAIN_PASSWORD": secretPass}, []string{`PORT="http": not a port number; want a TCP port number`}},
		"PORT out of range":     {env{"PORT": "70000", "DRAIN_USER": "u", "DRAIN_PASSWORD": secretPass}, []string{`PORT="70000": not a port number`}},
		"BIND_ADDR":             {env{"PORT": "8080", "BIND_ADDR": "127.0.0.1:8080", "DRAIN_USER": "u", "DRAIN_PASSWORD": secretPass}, []string{`BIND_ADDR="127.0.0.1:8080": neither an IP address nor a host name; want an IP address or host name`}},
		"DRAIN_USER with colon": {env{"PORT": "8080", "DRAIN_USER": "a:b", "DRAIN_PASSWORD": secretPass}, []string{`DRAIN_USER="a:b": contains ':'`}},
		"DRAIN_PASSWORD missing": {env{"PORT": "8080", "DRAIN_USER": "metrics"},
			[]string{"PORT=8080 serves the drain, but DRAIN_PASSWORD is not set", "DRAIN_INSECURE_NO_AUTH=true"}},
		"DRAIN_USER missing": {env{"PORT": "8080", "DRAIN_PASSWORD": secretPass}, []string{"but DRAIN_USER is not set"}},
		"DRAIN_SECRET with DRAIN_USER": {env{"PORT": "8080", "DRAIN_USER": "u", "DRAIN_PASSWORD": secretPass, "DRAIN_SECRET": secretDrain},
			[]string{"DRAIN_SECRET (value not shown): set together with DRAIN_USER, DRAIN_PASSWORD or DRAIN_INSECURE_NO_AUTH"}},
		"DRAIN_SECRET short": {env{"PORT": "8080", "DRAIN_SECRET": secretDrain + ",s3cret-short"},
			[]string{"DRAIN_SECRET (value not shown): secret 2 of 2 is shorter than 32 characters; want comma-separated secrets"}},
		"DRAIN_SECRET with HEROKU_API_KEY": {env{"PORT": "8080", "DRAIN_SECRET": secretDrain, "REDIS_URL": "redis://127.0.0.1:6379",
			"HEROKU_API_KEY": secretToken, "HEROKU_APP_NAME": "billing"},
			[]string{"unset SYSLOG_ADDR and HEROKU_API_KEY, whose lines carry no app credentials"}},
		"DRAIN_SECRET with SYSLOG_ADDR": {env{"PORT": "8080", "DRAIN_SECRET": secretDrain, "SYSLOG_ADDR": ":6514"},
			[]string{"unset SYSLOG_ADDR and HEROKU_API_KEY, whose lines carry no app credentials"}},
		"METRICS_PREFIX {app} without DRAIN_SECRET": {env{"METRICS_PREFIX": "us.{app}"},
			[]string{`METRICS_PREFIX="us.{app}": contains {app}, which only multi-app mode (DRAIN_SECRET) fills in`}},
		"METRICS_TAGS app with DRAIN_SECRET": {env{"PORT": "8080", "DRAIN_SECRET": secretDrain, "METRICS_TAGS": "app:x"},
			[]string{`METRICS_TAGS="app:x": has a tag "app", which multi-app mode (DRAIN_SECRET) sets on every series itself`}},
		"DRAIN_HOST": {env{"DRAIN_HOST": "https://metrics.example.com"},
			[]string{`DRAIN_HOST="https://metrics.example.com": not a bare host name`}},
		"DRAIN_INSECURE_NO_AUTH": {env{"DRAIN_INSECURE_NO_AUTH": "yes please"}, []string{`DRAIN_INSECURE_NO_AUTH="yes please": not a boolean; want true or false`}},
		"HEROKU_API_KEY alone":   {env{"HEROKU_API_KEY": secretToken}, []string{"HEROKU_API_KEY is set but HEROKU_APP_NAME is not"}},
		"HEROKU_APP_NAME":        {env{"HEROKU_API_KEY": secretToken, "HEROKU_APP_NAME": "My App"}, []string{`HEROKU_APP_NAME="My App": not an app name; want a Heroku app name`}},
		"HEROKU_API_URL":         {env{"HEROKU_API_URL": "api.heroku.com"}, []string{`HEROKU_API_URL="api.heroku.com": no http:// or https:// in front; want an http(s) base URL`}},
		"SYSLOG_ADDR":            {env{"SYSLOG_ADDR": "notanaddr"}, []string{`SYSLOG_ADDR="notanaddr": not host:port; want a TCP listen address`}},
		"SYSLOG_ADDR port":       {env{"SYSLOG_ADDR": ":syslog"}, []string{`SYSLOG_ADDR=":syslog": not a port number`}},
		"SYSLOG_TLS_CERT missing file": {env{"SYSLOG_ADDR": ":6514", "SYSLOG_TLS_CERT": "/nonexistent/c.pem", "SYSLOG_TLS_KEY": key},
			[]string{`SYSLOG_TLS_CERT="/nonexistent/c.pem": cannot be read; want a readable PEM certificate file`}},
		"SYSLOG_TLS_KEY not a key": {env{"SYSLOG_ADDR": ":6514", "SYSLOG_TLS_CERT": cert, "SYSLOG_TLS_KEY": junk},
			[]string{`SYSLOG_TLS_CERT="` + cert + `" and SYSLOG_TLS_KEY="` + junk + `": not a matching PEM certificate and key`}},
		"SYSLOG_TLS_KEY alone":     {env{"SYSLOG_ADDR": ":6514", "SYSLOG_TLS_KEY": key}, []string{"SYSLOG_TLS_KEY is set but SYSLOG_TLS_CERT is not"}},
		"SYSLOG_TLS without addr":  {env{"SYSLOG_TLS_CERT": cert, "SYSLOG_TLS_KEY": key}, []string{"SYSLOG_TLS_CERT and SYSLOG_TLS_KEY are set but SYSLOG_ADDR is not"}},
		"METRICS_PREFIX":           {env{"METRICS_PREFIX": "bad prefix!"}, []string{`METRICS_PREFIX="bad prefix!": ' ' at byte 3 is not allowed; want 1 to 128 of A-Z a-z 0-9 . : _ -`}},
		"METRICS_TAGS":             {env{"METRICS_TAGS": "region"}, []string{`METRICS_TAGS="region": pair 1 "region" has no ':'`, "want name:value pairs"}},
		"METRICS_TAGS empty value": {env{"METRICS_TAGS": "region:"}, []string{`METRICS_TAGS="region:": pair 1 "region:": empty name or value`}},
		"METRICS_TAGS for Librato": {env{"METRICS_TAGS": "dyno:web", "LIBRATO_USER": "ops@example.com", "LIBRATO_TOKEN": secretToken},
			[]string{`METRICS_TAGS="dyno:web": for Librato: tag "dyno" is set from each series' source`}},
		"METRICS_TAGS for OTLP": {env{"METRICS_TAGS": "source:x", "OTEL_EXPORTER_OTLP_ENDPOINT": "https://otlp.example.com"},
			[]string{`METRICS_TAGS="source:x": for OTLP: tag "source" is reserved for the dyno`}},
		"METRICS_TAGS for remote write": {env{"METRICS_TAGS": "source:x", "REMOTE_WRITE_URL": rw},
			[]string{`METRICS_TAGS="source:x": for remote write: tag "source": label name source is reserved`}},
		"METRICS_RESOLUTION not a duration": {env{"METRICS_RESOLUTION": "abc"},
			[]string{`METRICS_RESOLUTION="abc": not a duration; want whole seconds from 1s to 24h that divide a day`}},
		"METRICS_RESOLUTION 7s":   {env{"METRICS_RESOLUTION": "7s"}, []string{`METRICS_RESOLUTION="7s": does not divide a day`}},
		"METRICS_RESOLUTION 1.5s": {env{"METRICS_RESOLUTION": "1500ms"}, []string{`METRICS_RESOLUTION="1500ms": not whole seconds`}},
		"METRICS_GRACE":           {env{"METRICS_GRACE": "2h"}, []string{`METRICS_GRACE="2h": out of range; want a duration from 0s (none) to 1h`}},
		"METRICS_GRACE negative":  {env{"METRICS_GRACE": "-1s"}, []string{`METRICS_GRACE="-1s": out of range`}},
		"METRICS_MAX_SERIES -1":   {env{"METRICS_MAX_SERIES": "-1"}, []string{`METRICS_MAX_SERIES="-1": out of range; want a whole number from 1 to 10000000 (0: the default)`}},
		"METRICS_MAX_SERIES word": {env{"METRICS_MAX_SERIES": "lots"}, []string{`METRICS_MAX_SERIES="lots": not a whole number`}},
		"LIBRATO_USER alone":      {env{"LIBRATO_USER": "ops@example.com"}, []string{"LIBRATO_USER is set but LIBRATO_TOKEN is not"}},
		"LIBRATO_TOKEN alone":     {env{"LIBRATO_TOKEN": secretToken}, []string{"LIBRATO_TOKEN is set without LIBRATO_USER", "LIBRATO_API=measurements"}},
		"LIBRATO_URL": {env{"LIBRATO_USER": "ops@example.com", "LIBRATO_TOKEN": secretToken, "LIBRATO_URL": "ftp://metrics.example.com"},
			[]string{`LIBRATO_URL="ftp://metrics.example.com": scheme "ftp" is not http or https`}},
		"LIBRATO_URL credentials": {env{"LIBRATO_USER": "ops@example.com", "LIBRATO_TOKEN": secretToken, "LIBRATO_URL": "https://ops:" + secretPass + "@metrics.example.com"},
			[]string{`LIBRATO_URL="https://metrics.example.com": credentials in the URL`}},
		"LIBRATO_API": {env{"LIBRATO_USER": "ops@example.com", "LIBRATO_TOKEN": secretToken, "LIBRATO_API": "v2"},
			[]string{`LIBRATO_API="v2": unknown API; want metrics (legacy source API) or measurements`}},
		"REMOTE_WRITE_URL": {env{"REMOTE_WRITE_URL": "localhost:9090/api/v1/write"}, []string{`REMOTE_WRITE_URL="localhost:9090/api/v1/write": no http:// or https:// in front; want an http(s) URL such as http://127.0.0.1:9090/api/v1/write`}},
		"REMOTE_WRITE_URL token in query": {env{"REMOTE_WRITE_URL": "https://push.example.com/write?key=" + secretToken + "#x", "METRICS_RESOLUTION": "7s"},
			[]string{`METRICS_RESOLUTION="7s"`}}, // a valid URL with a secret in the query: never echoed
		"REMOTE_WRITE_USER colon": {env{"REMOTE_WRITE_URL": rw, "REMOTE_WRITE_USER": "a:b", "REMOTE_WRITE_PASSWORD": secretPass},
			[]string{`REMOTE_WRITE_USER="a:b": contains ':'; want a Basic auth user name without ':'`}},
		"REMOTE_WRITE_USER alone":     {env{"REMOTE_WRITE_URL": rw, "REMOTE_WRITE_USER": "123456"}, []string{"REMOTE_WRITE_USER is set but REMOTE_WRITE_PASSWORD is not"}},
		"REMOTE_WRITE_PASSWORD alone": {env{"REMOTE_WRITE_URL": rw, "REMOTE_WRITE_PASSWORD": secretPass}, []string{"REMOTE_WRITE_PASSWORD is set but REMOTE_WRITE_USER is not"}},
		"REMOTE_WRITE_BEARER_TOKEN and Basic": {env{"REMOTE_WRITE_URL": rw, "REMOTE_WRITE_USER": "u", "REMOTE_WRITE_PASSWORD": secretPass, "REMOTE_WRITE_BEARER_TOKEN": secretToken},
			[]string{"REMOTE_WRITE_BEARER_TOKEN and REMOTE_WRITE_USER/REMOTE_WRITE_PASSWORD exclude each other"}},
		"REMOTE_WRITE_BEARER_TOKEN without URL": {env{"REMOTE_WRITE_BEARER_TOKEN": secretToken}, []string{"but REMOTE_WRITE_URL is not"}},
		"REMOTE_WRITE_HEADERS": {env{"REMOTE_WRITE_URL": rw, "REMOTE_WRITE_HEADERS": "Content-Type:text/plain"},
			[]string{"REMOTE_WRITE_HEADERS (value not shown): header Content-Type is set by the protocol; want Name:value pairs"}},
		"REMOTE_WRITE_HEADERS syntax": {env{"REMOTE_WRITE_URL": rw, "REMOTE_WRITE_HEADERS": "Authorization " + secretToken},
			[]string{"REMOTE_WRITE_HEADERS (value not shown): entry 1: no ':' between name and value"}},
		"REMOTE_WRITE_HEADERS Authorization twice": {env{"REMOTE_WRITE_URL": rw, "REMOTE_WRITE_BEARER_TOKEN": secretToken, "REMOTE_WRITE_HEADERS": "Authorization:" + secretToken},
			[]string{"REMOTE_WRITE_HEADERS sets Authorization, which REMOTE_WRITE_USER or REMOTE_WRITE_BEARER_TOKEN sets too"}},
		"SHUTDOWN_TIMEOUT":       {env{"SHUTDOWN_TIMEOUT": "0s"}, []string{`SHUTDOWN_TIMEOUT="0s": not positive; want a positive duration`}},
		"SHUTDOWN_TIMEOUT parse": {env{"SHUTDOWN_TIMEOUT": "soon"}, []string{`SHUTDOWN_TIMEOUT="soon": not a duration`}},
		"EMITTER_INTERVAL":       {env{"EMITTER_INTERVAL": "often"}, []string{`EMITTER_INTERVAL="often" is not a valid time.Duration`}},
		"EMITTER_INTERVAL vs METRICS_RESOLUTION": {env{"EMITTER_INTERVAL": "5s", "METRICS_RESOLUTION": "10s"},
			[]string{"EMITTER_INTERVAL=5s does not suit METRICS_RESOLUTION=10s"}},
		"EMITTER_PREFIX": {env{"EMITTER_PREFIX": "a b"}, []string{`EMITTER_PREFIX: "a b" has ' ' at byte 1`}},
		"OTLP_SOURCE_ATTRIBUTES": {env{"OTLP_SOURCE_ATTRIBUTES": "heroku.dyno.name,,x"},
			[]string{`OTLP_SOURCE_ATTRIBUTES="heroku.dyno.name,,x": an empty or over-long attribute name; want comma-separated attribute names`}},
		"FIR_DYNO_NAMES": {env{"FIR_DYNO_NAMES": "short"}, []string{`FIR_DYNO_NAMES="short": unknown mode; want full (web-5d8f7c9b4-x2k9p) or type (web)`}},
		"OTEL_EXPORTER_OTLP_ENDPOINT": {env{"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"},
			[]string{`OTEL_EXPORTER_OTLP_ENDPOINT="collector:4318": no http:// or https:// in front; want an http(s) base URL`}},
		"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": {env{"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "https://u:" + secretPass + "@otlp.example.com/v1/metrics"},
			[]string{`OTEL_EXPORTER_OTLP_METRICS_ENDPOINT="https://otlp.example.com/v1/metrics": credentials in the URL`}},
		"OTEL_EXPORTER_OTLP_HEADERS": {env{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otlp.example.com", "OTEL_EXPORTER_OTLP_HEADERS": "api-key" + secretToken},
			[]string{"OTEL_EXPORTER_OTLP_HEADERS: invalid key=value list: entry 1: no '='"}},
		"OTEL_EXPORTER_OTLP_HEADERS protocol header": {env{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otlp.example.com", "OTEL_EXPORTER_OTLP_HEADERS": "Content-Type=text/plain"},
			[]string{"OTEL_EXPORTER_OTLP_HEADERS: header Content-Type is set by the protocol"}},
		"OTEL_EXPORTER_OTLP_METRICS_HEADERS": {env{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otlp.example.com", "OTEL_EXPORTER_OTLP_METRICS_HEADERS": "=" + secretToken},
			[]string{"OTEL_EXPORTER_OTLP_METRICS_HEADERS: invalid key=value list: entry 1: empty key"}},
		"OTEL_EXPORTER_OTLP_PROTOCOL": {env{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otlp.example.com", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
			[]string{"OTEL_EXPORTER_OTLP_PROTOCOL=grpc: not supported"}},
		"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": {env{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otlp.example.com", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "thrift"},
			[]string{`OTEL_EXPORTER_OTLP_METRICS_PROTOCOL="thrift": want http/protobuf or http/json`}},
		"OTEL_EXPORTER_OTLP_COMPRESSION": {env{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otlp.example.com", "OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"},
			[]string{`OTEL_EXPORTER_OTLP_COMPRESSION="zstd": want gzip or none`}},
		"OTEL_EXPORTER_OTLP_METRICS_COMPRESSION": {env{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otlp.example.com", "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION": "br"},
			[]string{`OTEL_EXPORTER_OTLP_METRICS_COMPRESSION="br": want gzip or none`}},
		"OTEL_EXPORTER_OTLP_TIMEOUT": {env{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otlp.example.com", "OTEL_EXPORTER_OTLP_TIMEOUT": "soon"},
			[]string{`OTEL_EXPORTER_OTLP_TIMEOUT="soon": want milliseconds`}},
		"OTEL_EXPORTER_OTLP_METRICS_TIMEOUT": {env{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otlp.example.com", "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT": "0"},
			[]string{`OTEL_EXPORTER_OTLP_METRICS_TIMEOUT="0": want milliseconds between 1 and 3600000`}},
		"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": {env{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otlp.example.com", "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "weekly"},
			[]string{`OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE="weekly": want cumulative`}},
		"OTEL_RESOURCE_ATTRIBUTES": {env{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otlp.example.com", "OTEL_RESOURCE_ATTRIBUTES": "region"},
			[]string{"OTEL_RESOURCE_ATTRIBUTES: invalid key=value list: entry 1: no '='"}},
		"OTEL_SERVICE_NAME":     {env{"OTEL_SERVICE_NAME": "my\napp"}, []string{`OTEL_SERVICE_NAME="my\napp": control character at byte 2`}},
		"REDIS_URL":             {env{"REDIS_URL": "http://u:" + secretPass + "@kv.example.com:6379"}, []string{`REDIS_URL="http://kv.example.com:6379": scheme "http" is not redis or rediss`}},
		"REDIS_TLS_SKIP_VERIFY": {env{"REDIS_TLS_SKIP_VERIFY": "true"}, []string{`REDIS_TLS_SKIP_VERIFY="true": set but REDIS_URL is not`}},
		"REDIS_CLUSTER":         {env{"REDIS_CLUSTER": "true"}, []string{`REDIS_CLUSTER="true": set but REDIS_URL is not`}},
		"REDIS_BALANCE":         {env{"REDIS_URL": "redis://127.0.0.1:6379", "REDIS_BALANCE": "evenly"}, []string{`REDIS_BALANCE="evenly": not a boolean; want true or false`}},
		"REDIS_TLS_SKIP_VERIFY with redis://": {env{"REDIS_URL": "redis://127.0.0.1:6379", "REDIS_TLS_SKIP_VERIFY": "true"},
			[]string{`REDIS_TLS_SKIP_VERIFY="true": true with a redis:// REDIS_URL: only rediss:// has a certificate to skip; want true or false; true only with a rediss://`}},
		"REDIS_HANDOVER":       {env{"REDIS_URL": "redis://127.0.0.1:6379", "REDIS_HANDOVER": "30s"}, []string{`REDIS_HANDOVER="30s": not within (0, METRICS_GRACE=10s)`}},
		"REDIS_FALLBACK_AFTER": {env{"REDIS_URL": "redis://127.0.0.1:6379", "REDIS_FALLBACK_AFTER": "-1m"}, []string{`REDIS_FALLBACK_AFTER="-1m": not positive`}},
		"REDIS_PARTITIONS":     {env{"REDIS_URL": "redis://127.0.0.1:6379", "REDIS_PARTITIONS": "4096"}, []string{`REDIS_PARTITIONS="4096": out of range`}},
		"REDIS_LEASE_TTL":      {env{"REDIS_URL": "redis://127.0.0.1:6379", "REDIS_LEASE_TTL": "500ms"}, []string{`REDIS_LEASE_TTL="500ms": below 1s`}},
		"VIEW_USER":            {env{"VIEW_USER": "a:b", "VIEW_PASSWORD": secretPass}, []string{`VIEW_USER="a:b": contains ':'`}},
		"VIEW_PASSWORD alone":  {env{"VIEW_PASSWORD": secretPass}, []string{"VIEW_PASSWORD is set but VIEW_USER is not"}},
		"VIEW_PASSWORD is the drain's": {env{"PORT": "8080", "DRAIN_USER": "d", "DRAIN_PASSWORD": secretPass, "VIEW_USER": "v", "VIEW_PASSWORD": secretPass},
			[]string{"VIEW_PASSWORD equals DRAIN_PASSWORD"}},
		"VIEW_WINDOW":       {env{"VIEW_WINDOW": "30s"}, []string{`VIEW_WINDOW="30s": shorter than METRICS_RESOLUTION=1m0s; want a duration of at least METRICS_RESOLUTION`}},
		"VIEW_MAX_POINTS":   {env{"VIEW_MAX_POINTS": "-1"}, []string{`VIEW_MAX_POINTS="-1": not positive; want a positive number`}},
		"VIEW_MAX_POINTS 0": {env{"VIEW_MAX_POINTS": "0"}, []string{`VIEW_MAX_POINTS="0": not positive; want a positive number`}},
		"VIEW_MAX_SERIES":   {env{"VIEW_MAX_SERIES": "many"}, []string{`VIEW_MAX_SERIES="many": not a whole number; want a positive number`}},
		"VIEW_MAX_SERIES 0": {env{"VIEW_MAX_SERIES": "0"}, []string{`VIEW_MAX_SERIES="0": not positive; want a positive number`}},
		"several at once": {env{"METRICS_GRACE": "2h", "LIBRATO_USER": "u", "LIBRATO_TOKEN": secretToken, "LIBRATO_API": "v2", "SYSLOG_ADDR": "x"},
			[]string{"METRICS_GRACE=", "LIBRATO_API=", "SYSLOG_ADDR="}},
	}
	covered := map[string]bool{}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			code := realMain([]string{"-stdin"}, strings.NewReader(""), &stdout, &stderr)
			out := stderr.String()
			if code != 2 {
				t.Fatalf("exit %d, want 2; stderr:\n%s", code, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("stderr lacks %q:\n%s", w, out)
				}
			}
			if strings.Contains(out, "s3cret") {
				t.Errorf("stderr shows a secret:\n%s", out)
			}
			if stdout.Len() != 0 || strings.Contains(out, "listening") || strings.Contains(out, "level=") {
				t.Errorf("something started before the configuration was checked:\nstdout %q\nstderr %s", stdout.String(), out)
			}
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				if !strings.HasPrefix(line, "worker: config: ") && line != "worker: see worker -h for every variable" {
					t.Errorf("line %q is not a worker: config: error", line)
				}
			}
		})
		for _, w := range tc.want {
			for _, v := range ownVars() {
				if strings.Contains(w, v.Name) {
					covered[v.Name] = true
				}
			}
		}
	}
	for _, v := range ownVars() {
		if !covered[v.Name] {
			t.Errorf("no case shows an error naming %s: add one", v.Name)
		}
	}
}

// TestEveryVariableSaysWhatItAccepts: every variable of every component
// has a meaning and the values it accepts, which errors, worker -h and
// docs/configuration.md show; and no variable has two owners.
func TestEveryVariableSaysWhatItAccepts(t *testing.T) {
	seen := map[string]bool{}
	for _, v := range ownVars() {
		if v.Desc == "" || v.Accepts == "" {
			t.Errorf("%s lacks a desc or accepts tag", v.Name)
		}
		if seen[v.Name] {
			t.Errorf("%s is read by two components", v.Name)
		}
		seen[v.Name] = true
	}
	if outlet.MaxPrefixLen != emitter.MaxPrefixLen {
		t.Errorf("METRICS_PREFIX allows %d bytes, EMITTER_PREFIX %d: the same rule", outlet.MaxPrefixLen, emitter.MaxPrefixLen)
	}
	if len(seen) < 45 {
		t.Errorf("only %d variables found", len(seen))
	}
}

func TestNoInput(t *testing.T) {
	clearEnv(t)
	var stdout, stderr bytes.Buffer
	if code := realMain(nil, strings.NewReader(""), &stdout, &stderr); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	if !strings.Contains(stderr.String(), "worker: config: no input configured: set PORT") {
		t.Errorf("stderr: %s", stderr.String())
	}
}

// TestMultiAppWithRedis: multi-app mode with REDIS_URL (several workers
// sharing state) is accepted now that the shared state carries the app;
// the inputs without app credentials are still refused, with -stdin too,
// before anything starts.
func TestMultiAppWithRedis(t *testing.T) {
	clearEnv(t)
	t.Setenv("PORT", "8080")
	t.Setenv("DRAIN_SECRET", secretDrain)
	t.Setenv("REDIS_URL", "redis://127.0.0.1:6379")
	t.Setenv("METRICS_PREFIX", "us-east.prod.{app}")
	if _, err := loadConfig(); err != nil {
		t.Fatalf("DRAIN_SECRET with REDIS_URL refused: %v", err)
	}
	var stdout, stderr bytes.Buffer
	if code := realMain([]string{"-stdin"}, strings.NewReader("x"), &stdout, &stderr); code != 2 ||
		!strings.Contains(stderr.String(), "-stdin: its lines carry no app credentials; unset DRAIN_SECRET") {
		t.Errorf("-stdin in multi-app mode: exit %d, stderr %s", code, stderr.String())
	}
	if strings.Contains(stderr.String(), "s3cret") || strings.Contains(stdout.String()+stderr.String(), "listening") {
		t.Errorf("a secret shown or something started:\n%s%s", stdout.String(), stderr.String())
	}
}

func TestStrayArgument(t *testing.T) {
	clearEnv(t)
	var stdout, stderr bytes.Buffer
	if code := realMain([]string{"stdin"}, strings.NewReader(""), &stdout, &stderr); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	if !strings.Contains(stderr.String(), `unexpected argument "stdin"`) {
		t.Errorf("stderr: %s", stderr.String())
	}
}

// TestUsage: -h prints to stdout, exits 0, lists every flag and every
// variable the worker reads (its own and the emitter's) with defaults, and
// carries no envconfig boilerplate.
func TestUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := realMain([]string{"-h"}, strings.NewReader(""), &stdout, &stderr); code != 0 {
		t.Fatalf("worker -h: exit %d", code)
	}
	out := stdout.String()
	want := []string{"-stdin", "-version", "60s", "https://metrics-api.librato.com", "25s",
		"EMITTER_INTERVAL", "EMITTER_PREFIX", "EMITTER_SOURCE", "EMITTER_STATSD_ADDR", "EMITTER_RUNTIME"}
	want = append(want, allVarNames()...)
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("worker -h does not mention %s", w)
		}
	}
	if strings.Contains(out, "This application is configured") || strings.Contains(out, "REQUIRED") {
		t.Errorf("worker -h carries envconfig's boilerplate")
	}
	if stderr.Len() != 0 {
		t.Errorf("worker -h wrote to stderr: %q", stderr.String())
	}
	for i, line := range strings.Split(out, "\n") {
		if n := utf8.RuneCountInString(line); n > usageWidth {
			t.Errorf("worker -h line %d has %d columns, at most %d: %q", i+1, n, usageWidth, line)
		}
	}
	if t.Failed() {
		t.Logf("worker -h:\n%s", out)
	}
}

// writeCert writes a self-signed certificate and its key for the TLS cases.
func writeCert(t *testing.T, dir string) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// TestBusyPortBeforeListening: a syslog address in use stops the worker
// before it starts any input or says it listens anywhere.
func TestBusyPortBeforeListening(t *testing.T) {
	clearEnv(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(free.Addr().(*net.TCPAddr).Port)
	free.Close()
	t.Setenv("SYSLOG_ADDR", busy.Addr().String())
	t.Setenv("PORT", port)
	t.Setenv("DRAIN_USER", "u")
	t.Setenv("DRAIN_PASSWORD", secretPass)
	var stdout, stderr bytes.Buffer
	if code := realMain(nil, strings.NewReader(""), &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, stderr.String())
	}
	if out := stderr.String(); strings.Contains(out, "listening") || !strings.Contains(out, "listen on SYSLOG_ADDR="+busy.Addr().String()) {
		t.Errorf("stderr:\n%s", out)
	}
	// The drain's port was released again.
	l, err := net.Listen("tcp", ":"+port)
	if err != nil {
		t.Errorf("PORT %s still bound: %v", port, err)
	} else {
		l.Close()
	}
}

var updateDoc = flag.Bool("update-doc", false, "rewrite the generated parts of docs/configuration.md and docs/self-metrics.md")

// The generated part of docs/configuration.md lies between these lines.
const (
	docBegin = "<!-- BEGIN variables: generated from the Config structs by `go test ./worker -run TestConfigurationDoc -update-doc` -->"
	docEnd   = "<!-- END variables -->"
)

// configTable renders every variable, section by section, as Markdown
// tables: name, default, what it accepts, what it does.
func configTable() string {
	cell := func(s string) string {
		if s == "" {
			return ""
		}
		return strings.ReplaceAll(s, "|", `\|`)
	}
	var b strings.Builder
	for _, s := range allSections() {
		fmt.Fprintf(&b, "\n### %s\n\n| Variable | Default | Accepts | Meaning |\n|---|---|---|---|\n", s.title)
		for _, v := range s.vars {
			def := ""
			if v.Default != "" {
				def = "`" + v.Default + "`"
			}
			accepts := cell(v.Accepts)
			if v.Secret {
				accepts += " (secret: never shown)"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", v.Name, def, accepts, cell(v.Desc))
		}
	}
	return b.String()
}

// TestConfigurationDoc: docs/configuration.md lists every variable the
// worker reads, and only those, with the defaults, accepted values and
// meanings the Config structs declare.
func TestConfigurationDoc(t *testing.T) {
	const path = "../docs/configuration.md"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i, j := strings.Index(doc, docBegin), strings.Index(doc, docEnd)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the markers %q and %q", path, docBegin, docEnd)
	}
	want := docBegin + "\n" + configTable() + "\n" + docEnd
	got := doc[i : j+len(docEnd)]
	if *updateDoc {
		if err := os.WriteFile(path, []byte(doc[:i]+want+doc[j+len(docEnd):]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if got != want {
		listed := map[string]bool{}
		for _, m := range regexp.MustCompile("(?m)^\\| `([A-Z0-9_]+)` \\|").FindAllStringSubmatch(got, -1) {
			listed[m[1]] = true
		}
		for _, n := range allVarNames() {
			if !listed[n] {
				t.Errorf("%s does not list %s", path, n)
			}
			delete(listed, n)
		}
		for n := range listed {
			t.Errorf("%s lists %s, which the worker does not read", path, n)
		}
		t.Errorf("%s is not what the Config structs say: run go test ./worker -run TestConfigurationDoc -update-doc", path)
	}
}
