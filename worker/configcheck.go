package main

import (
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/dynometrics/dynometrics/emitter"
	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/input/otlp"
	"github.com/dynometrics/dynometrics/internal/librato"
	"github.com/dynometrics/dynometrics/internal/otlpout"
	"github.com/dynometrics/dynometrics/internal/promwrite"
	"github.com/kelseyhightower/envconfig"
)

// errConfig is wrapped by every configuration error: realMain exits 2 on it.
var errConfig = errors.New("config")

// A configVar is the rule for one environment variable of Config: what it
// accepts (said in every error about it) and how to check it on its own.
// Every Config field has one entry in configVars (a test enforces it); a new
// variable adds one line here, and a rule spanning several variables goes in
// configRules.
type configVar struct {
	name    string                // the environment variable, as in the envconfig tag
	accepts string                // what is accepted, e.g. "whole seconds that divide a day, e.g. 60s"
	secret  bool                  // its value never appears in errors (nor anywhere else)
	check   func(c *Config) error // nil: any value is accepted; called only when the variable is set
}

// configVars lists every variable of Config. Checks return what is wrong
// with the value, without naming the variable: validate prefixes NAME=value.
var configVars = []configVar{
	{name: "PORT", accepts: "a TCP port number, 1 to 65535 (Heroku sets it)", check: func(c *Config) error { return checkPort(c.Port) }},
	{name: "DRAIN_USER", accepts: "a Basic auth user name without ':'", check: func(c *Config) error {
		return noneOf(c.DrainUser, ":")
	}},
	{name: "DRAIN_PASSWORD", accepts: "any password (e.g. openssl rand -hex 16)", secret: true},
	{name: "DRAIN_INSECURE_NO_AUTH", accepts: "true or false"},
	{name: "HEROKU_API_KEY", accepts: "a Platform API key (heroku authorizations:create)", secret: true},
	{name: "HEROKU_APP_NAME", accepts: "a Heroku app name (lower-case letters, digits, dashes) or app id", check: func(c *Config) error {
		if !herokuApp.MatchString(c.HerokuAppName) {
			return errors.New("not an app name")
		}
		return nil
	}},
	{name: "HEROKU_API_URL", accepts: "an http(s) base URL such as https://api.heroku.com", check: func(c *Config) error {
		return checkURL(c.HerokuAPIURL, true)
	}},
	{name: "SYSLOG_ADDR", accepts: "a TCP listen address host:port or :port, e.g. :6514", check: func(c *Config) error {
		host, port, err := net.SplitHostPort(c.SyslogAddr)
		if err != nil {
			return errors.New("not host:port")
		}
		if host != "" && net.ParseIP(host) == nil && !hostname.MatchString(host) {
			return fmt.Errorf("host %q is neither an IP address nor a host name", host)
		}
		return checkPort(port)
	}},
	{name: "SYSLOG_TLS_CERT", accepts: "a readable PEM certificate file matching SYSLOG_TLS_KEY", check: func(c *Config) error {
		return checkFile(c.SyslogTLSCert)
	}},
	{name: "SYSLOG_TLS_KEY", accepts: "a readable PEM private key file matching SYSLOG_TLS_CERT", check: func(c *Config) error {
		return checkFile(c.SyslogTLSKey)
	}},
	{name: "METRICS_PREFIX", accepts: fmt.Sprintf("1 to %d of A-Z a-z 0-9 . : _ - (the same rule as EMITTER_PREFIX)", emitter.MaxPrefixLen),
		check: func(c *Config) error { return checkName(c.MetricsPrefix, emitter.MaxPrefixLen) }},
	{name: "METRICS_TAGS", accepts: "name:value pairs separated by commas, e.g. region:us-east,env:prod", check: checkTags},
	{name: "METRICS_RESOLUTION", accepts: "whole seconds from 1s to 24h that divide a day, e.g. 10s or 60s", check: func(c *Config) error {
		d := c.MetricsResolution
		switch {
		case d < aggregate.MinResolution || d > aggregate.MaxResolution:
			return errors.New("out of range")
		case d%time.Second != 0:
			return errors.New("not whole seconds")
		case (24*time.Hour)%d != 0:
			return errors.New("does not divide a day")
		}
		return nil
	}},
	{name: "METRICS_GRACE", accepts: fmt.Sprintf("a duration from 0s to %s, e.g. 10s", aggregate.MaxGrace), check: func(c *Config) error {
		if c.MetricsGrace < 0 || c.MetricsGrace > aggregate.MaxGrace {
			return errors.New("out of range")
		}
		return nil
	}},
	{name: "LIBRATO_USER", accepts: "the Librato account's email"},
	{name: "LIBRATO_TOKEN", accepts: "a Librato or AppOptics API token", secret: true},
	{name: "LIBRATO_URL", accepts: "an http(s) base URL such as " + librato.DefaultURL, check: func(c *Config) error {
		return checkURL(c.LibratoURL, true)
	}},
	{name: "LIBRATO_API", accepts: "metrics (legacy source API) or measurements (tagged API)", check: func(c *Config) error {
		if c.LibratoAPI != librato.APIMetrics && c.LibratoAPI != librato.APIMeasurements {
			return errors.New("unknown API")
		}
		return nil
	}},
	{name: "REMOTE_WRITE_URL", accepts: "an http(s) URL such as http://127.0.0.1:9090/api/v1/write", check: func(c *Config) error {
		return checkURL(c.RemoteWriteURL, false)
	}},
	{name: "REMOTE_WRITE_USER", accepts: "a Basic auth user name without ':' (with REMOTE_WRITE_PASSWORD)", check: func(c *Config) error {
		return noneOf(c.RemoteWriteUser, ":")
	}},
	{name: "REMOTE_WRITE_PASSWORD", accepts: "a Basic auth password (with REMOTE_WRITE_USER)", secret: true},
	{name: "REMOTE_WRITE_BEARER_TOKEN", accepts: "a bearer token", secret: true},
	{name: "REMOTE_WRITE_HEADERS", accepts: "Name:value pairs separated by commas, e.g. X-Scope-OrgID:tenant1", secret: true, check: checkHeaders},
	{name: "SHUTDOWN_TIMEOUT", accepts: "a positive duration, below Heroku's 30s, e.g. 25s", check: func(c *Config) error {
		if c.ShutdownTimeout <= 0 {
			return errors.New("not positive")
		}
		return nil
	}},

	// The OTLP receiver (Fir telemetry drains, worker/otlp.go).
	{name: "OTLP_SOURCE_ATTRIBUTES", accepts: "comma-separated attribute names, e.g. " + otlp.DefaultSourceAttributes, check: func(c *Config) error {
		_, err := otlpSourceAttributes(c.OTLPSourceAttributes)
		return err
	}},
	{name: "FIR_DYNO_NAMES", accepts: "full (web-5d8f7c9b4-x2k9p) or type (web)", check: func(c *Config) error {
		if _, err := otlp.ParseDynoNames(c.FirDynoNames); err != nil {
			return errors.New("unknown mode")
		}
		return nil
	}},

	// The OTLP outlet (worker/otlp_outlet.go): checked together by the rule
	// below, since the _METRICS_ forms win over the general ones.
	{name: otlpout.VarEndpoint, accepts: "an OTLP/HTTP base URL; /v1/metrics is appended"},
	{name: otlpout.VarMetricsEndpoint, accepts: "an OTLP/HTTP metrics URL, used as is"},
	{name: otlpout.VarHeaders, accepts: "key=value pairs separated by commas, values URL-encoded", secret: true},
	{name: otlpout.VarMetricsHeaders, accepts: "key=value pairs separated by commas, values URL-encoded", secret: true},
	{name: otlpout.VarProtocol, accepts: "http/protobuf or http/json"},
	{name: otlpout.VarMetricsProtocol, accepts: "http/protobuf or http/json"},
	{name: otlpout.VarCompression, accepts: "gzip or none"},
	{name: otlpout.VarMetricsCompression, accepts: "gzip or none"},
	{name: otlpout.VarTimeout, accepts: "milliseconds, e.g. 10000"},
	{name: otlpout.VarMetricsTimeout, accepts: "milliseconds, e.g. 10000"},
	{name: otlpout.VarTemporality, accepts: "cumulative, delta or lowmemory"},
	{name: otlpout.VarResourceAttributes, accepts: "key=value pairs separated by commas, values URL-encoded"},
	{name: otlpout.VarServiceName, accepts: "a service name without control characters", check: func(c *Config) error {
		if i := strings.IndexFunc(c.OTELServiceName, unicode.IsControl); i >= 0 {
			return fmt.Errorf("control character at byte %d", i)
		}
		return nil
	}},

	// Shared state (worker/store.go). Without REDIS_URL the others are
	// not used, and not checked.
	{name: "REDIS_URL", accepts: "redis://[user:password@]host:port[/db] or rediss://… (Heroku Key-Value Store sets it)", check: func(c *Config) error {
		u, err := url.Parse(c.RedisURL)
		switch {
		case err != nil:
			return errors.New("not a URL") // url.Parse's error quotes the input, password included
		case u.Scheme != "redis" && u.Scheme != "rediss":
			return fmt.Errorf("scheme %q is not redis or rediss", u.Scheme)
		case u.Host == "":
			return errors.New("no host")
		}
		return nil
	}},
	{name: "REDIS_TLS_SKIP_VERIFY", accepts: "true or false; true only with a rediss:// REDIS_URL", check: func(c *Config) error {
		if c.RedisTLSSkipVerify && c.RedisURL == "" {
			return errors.New("set but REDIS_URL is not")
		}
		return nil
	}},
	{name: "REDIS_HANDOVER", accepts: "a positive duration shorter than METRICS_GRACE, e.g. 2s", check: func(c *Config) error {
		if c.RedisURL != "" && (c.RedisHandover <= 0 || c.RedisHandover >= c.MetricsGrace) {
			return fmt.Errorf("not within (0, METRICS_GRACE=%s): a partial handed over after the grace would be late", c.MetricsGrace)
		}
		return nil
	}},
	{name: "REDIS_FALLBACK_AFTER", accepts: "a positive duration, e.g. 2m", check: func(c *Config) error {
		if c.RedisURL != "" && c.RedisFallbackAfter <= 0 {
			return errors.New("not positive")
		}
		return nil
	}},
	{name: "REDIS_LEASE_TTL", accepts: "a duration of at least 1s, e.g. 15s", check: func(c *Config) error {
		if c.RedisURL != "" && c.RedisLeaseTTL != 0 && c.RedisLeaseTTL < time.Second { // 0: the default
			return errors.New("below 1s: leases are renewed every second")
		}
		return nil
	}},
	{name: "REDIS_PARTITIONS", accepts: "1 to 1024, the same on every worker of the app", check: func(c *Config) error {
		if c.RedisURL != "" && (c.RedisPartitions < 1 || c.RedisPartitions > 1024) {
			return errors.New("out of range")
		}
		return nil
	}},

	// The live view (worker/view.go).
	{name: "VIEW_USER", accepts: "a Basic auth user name without ':' (with VIEW_PASSWORD)", check: func(c *Config) error {
		return noneOf(c.ViewUser, ":")
	}},
	{name: "VIEW_PASSWORD", accepts: "a password other than DRAIN_PASSWORD (with VIEW_USER)", secret: true},
	{name: "VIEW_WINDOW", accepts: "a duration of at least METRICS_RESOLUTION, e.g. 6h", check: func(c *Config) error {
		if c.ViewWindow < 0 || (c.ViewWindow > 0 && c.ViewWindow < c.MetricsResolution) {
			return fmt.Errorf("shorter than METRICS_RESOLUTION=%s", c.MetricsResolution)
		}
		return nil
	}},
	{name: "VIEW_MAX_POINTS", accepts: "a positive number of points per line, e.g. 720", check: func(c *Config) error {
		return positive(c.ViewMaxPoints)
	}},
	{name: "VIEW_MAX_SERIES", accepts: "a positive number of per-dyno series, e.g. 2000", check: func(c *Config) error {
		return positive(c.ViewMaxSeries)
	}},
}

func positive(n int) error {
	if n < 0 {
		return errors.New("negative")
	}
	return nil
}

// configRules check variables that go together. Each error names every
// variable involved.
var configRules = []func(c *Config) error{
	otlpOutletRule,
	viewRule,
	func(c *Config) error {
		if c.Port == "" || c.DrainInsecureNoAuth || (c.DrainUser != "" && c.DrainPassword != "") {
			return nil
		}
		missing := "DRAIN_USER and DRAIN_PASSWORD are"
		switch {
		case c.DrainUser != "":
			missing = "DRAIN_PASSWORD is"
		case c.DrainPassword != "":
			missing = "DRAIN_USER is"
		}
		return fmt.Errorf("PORT=%s serves the drain, but %s not set: the drain URL carries these credentials "+
			"(or set DRAIN_INSECURE_NO_AUTH=true to accept unauthenticated POSTs)", c.Port, missing)
	},
	func(c *Config) error {
		return together("HEROKU_API_KEY", c.HerokuAPIKey, "HEROKU_APP_NAME", c.HerokuAppName, "to tail the app's logs through log sessions")
	},
	func(c *Config) error {
		if err := together("SYSLOG_TLS_CERT", c.SyslogTLSCert, "SYSLOG_TLS_KEY", c.SyslogTLSKey, "to serve syslog over TLS"); err != nil {
			return err
		}
		if c.SyslogTLSCert == "" {
			return nil
		}
		if c.SyslogAddr == "" {
			return errors.New("SYSLOG_TLS_CERT and SYSLOG_TLS_KEY are set but SYSLOG_ADDR is not: set the address to listen on, e.g. SYSLOG_ADDR=:6514")
		}
		if checkFile(c.SyslogTLSCert) != nil || checkFile(c.SyslogTLSKey) != nil {
			return nil // reported for the variable itself
		}
		if _, err := tls.LoadX509KeyPair(c.SyslogTLSCert, c.SyslogTLSKey); err != nil {
			// The error names the files' problem, never their contents.
			return fmt.Errorf("SYSLOG_TLS_CERT=%q and SYSLOG_TLS_KEY=%q: not a matching PEM certificate and key: %v", c.SyslogTLSCert, c.SyslogTLSKey, err)
		}
		return nil
	},
	func(c *Config) error {
		switch {
		case c.LibratoUser != "" && c.LibratoToken == "":
			return errors.New("LIBRATO_USER is set but LIBRATO_TOKEN is not: the token enables the Librato outlet")
		case c.LibratoToken != "" && c.LibratoUser == "" && c.LibratoAPI == librato.APIMetrics:
			return errors.New("LIBRATO_TOKEN is set without LIBRATO_USER: the metrics (source) API needs the account email; " +
				"a token alone works only with LIBRATO_API=measurements (AppOptics token auth)")
		}
		return nil
	},
	func(c *Config) error {
		switch {
		case c.RemoteWriteBearerToken != "" && (c.RemoteWriteUser != "" || c.RemoteWritePassword != ""):
			return errors.New("REMOTE_WRITE_BEARER_TOKEN and REMOTE_WRITE_USER/REMOTE_WRITE_PASSWORD exclude each other: set one kind of auth")
		case c.RemoteWriteURL == "" && (c.RemoteWriteUser != "" || c.RemoteWritePassword != "" || c.RemoteWriteBearerToken != "" || c.RemoteWriteHeaders != ""):
			return errors.New("REMOTE_WRITE_USER, REMOTE_WRITE_PASSWORD, REMOTE_WRITE_BEARER_TOKEN or REMOTE_WRITE_HEADERS is set but REMOTE_WRITE_URL is not: the URL enables the remote-write outlet")
		}
		return together("REMOTE_WRITE_USER", c.RemoteWriteUser, "REMOTE_WRITE_PASSWORD", c.RemoteWritePassword, "for Basic auth")
	},
	func(c *Config) error {
		if c.RemoteWriteURL == "" || c.RemoteWriteHeaders == "" {
			return nil
		}
		h, err := promwrite.ParseHeaders(c.RemoteWriteHeaders)
		if err != nil {
			return nil // reported for the variable itself
		}
		for name := range h {
			if strings.EqualFold(name, "Authorization") && (c.RemoteWriteUser != "" || c.RemoteWriteBearerToken != "") {
				return fmt.Errorf("REMOTE_WRITE_HEADERS sets Authorization, which REMOTE_WRITE_USER or REMOTE_WRITE_BEARER_TOKEN sets too: use one")
			}
		}
		return nil
	},
}

// otlpOutletRule checks the OTLP outlet's variables together when an
// endpoint enables it; the errors name the variable and never quote a header
// value or an endpoint's credentials.
func otlpOutletRule(c *Config) error {
	if !c.otlp() {
		return nil
	}
	_, err := c.otlpEnv().Config()
	return err
}

// viewRule: the view's credentials go together and are not the drain's.
func viewRule(c *Config) error {
	if err := together("VIEW_USER", c.ViewUser, "VIEW_PASSWORD", c.ViewPassword, "to serve the live view behind Basic auth"); err != nil {
		return err
	}
	if c.ViewPassword != "" && subtle.ConstantTimeCompare([]byte(c.ViewPassword), []byte(c.DrainPassword)) == 1 {
		return errors.New("VIEW_PASSWORD equals DRAIN_PASSWORD: the drain's credentials travel in the drain URL, give the view its own password")
	}
	return nil
}

// validate checks every variable that is set against its configVar, then
// configRules, and returns every problem found, each wrapping errConfig.
func (c Config) validate() error {
	var errs []error
	for _, v := range configVars {
		if v.check == nil || !isSet(&c, v.name) {
			continue
		}
		if err := v.check(&c); err != nil {
			errs = append(errs, fmt.Errorf("%w: %s: %v; want %s", errConfig, shown(&c, v), err, v.accepts))
		}
	}
	for _, rule := range configRules {
		if err := rule(&c); err != nil {
			errs = append(errs, fmt.Errorf("%w: %v", errConfig, err))
		}
	}
	return errors.Join(errs...)
}

// envError turns envconfig's error for a value that does not parse (a bad
// duration or boolean) into one that names the variable, the value (unless it
// is a secret) and what is accepted, without envconfig's Go field names.
func envError(err error) error {
	var pe *envconfig.ParseError
	if !errors.As(err, &pe) {
		return fmt.Errorf("%w: %v", errConfig, err)
	}
	v, ok := varByName(pe.KeyName)
	if !ok {
		return fmt.Errorf("%w: %s=%q is not a valid %s", errConfig, pe.KeyName, pe.Value, pe.TypeName)
	}
	value := strconv.Quote(pe.Value)
	if v.secret {
		value = "(secret, not shown)"
	}
	return fmt.Errorf("%w: %s=%s: not a %s; want %s", errConfig, v.name, value, typeWord(pe.TypeName), v.accepts)
}

func typeWord(goType string) string {
	switch goType {
	case "Duration", "time.Duration":
		return "duration"
	case "bool":
		return "boolean"
	}
	return goType
}

func varByName(name string) (configVar, bool) {
	for _, v := range configVars {
		if v.name == name {
			return v, true
		}
	}
	return configVar{}, false
}

// shown is NAME=value for errors: the value as set in the environment (else
// as the Config holds it), quoted; a secret's value is never shown, and a URL
// loses any credentials and query it carries.
func shown(c *Config, v configVar) string {
	if v.secret {
		return v.name + " (value not shown)"
	}
	val, ok := os.LookupEnv(v.name)
	if !ok {
		val = fieldString(c, v.name)
	}
	if strings.Contains(val, "://") {
		val = redactURL(val)
	}
	return v.name + "=" + strconv.Quote(val)
}

// isSet reports whether the variable is set in the environment, has a
// default, or its field holds a value (tests build Configs directly).
func isSet(c *Config, name string) bool {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return true
	}
	f, sf, ok := field(c, name)
	return ok && (!f.IsZero() || sf.Tag.Get("default") != "")
}

func fieldString(c *Config, name string) string {
	f, _, ok := field(c, name)
	if !ok {
		return ""
	}
	if d, ok := f.Interface().(time.Duration); ok {
		return d.String()
	}
	return fmt.Sprint(f.Interface())
}

// field returns the Config field whose envconfig tag is name.
func field(c *Config, name string) (reflect.Value, reflect.StructField, bool) {
	rv := reflect.ValueOf(c).Elem()
	for i := 0; i < rv.NumField(); i++ {
		if sf := rv.Type().Field(i); sf.Tag.Get("envconfig") == name {
			return rv.Field(i), sf, true
		}
	}
	return reflect.Value{}, reflect.StructField{}, false
}

var (
	herokuApp = regexp.MustCompile(`^([a-z][a-z0-9-]{1,29}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$`)
	hostname  = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$`)
)

func checkPort(p string) error {
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return errors.New("not a port number")
	}
	return nil
}

func noneOf(s, chars string) error {
	if i := strings.IndexAny(s, chars); i >= 0 {
		return fmt.Errorf("contains %q", s[i])
	}
	return nil
}

func checkFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return errors.New("cannot be read")
	}
	f.Close()
	return nil
}

// checkName is emitter's rule for EMITTER_PREFIX: 1..max bytes of
// [A-Za-z0-9.:_-].
func checkName(s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("%d bytes", len(s))
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '.' || b == ':' || b == '_' || b == '-') {
			return fmt.Errorf("%q at byte %d is not allowed", b, i)
		}
	}
	return nil
}

// checkURL accepts an absolute http(s) URL with a host and no credentials;
// a base URL has no query or fragment either.
func checkURL(s string, base bool) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return errors.New("not a URL") // url.Parse's error quotes the input, which may hold credentials
	case u.Scheme != "http" && u.Scheme != "https":
		if u.Scheme == "" || u.Opaque != "" {
			return errors.New("no http:// or https:// in front")
		}
		return fmt.Errorf("scheme %q is not http or https", u.Scheme)
	case u.Host == "":
		return errors.New("no host")
	case u.User != nil:
		return errors.New("credentials in the URL: use the variables for them")
	case base && (u.RawQuery != "" || u.Fragment != ""):
		return errors.New("a base URL has no query or fragment")
	}
	return nil
}

// redactURL removes credentials and the query from a URL for display.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		if i := strings.Index(s, "://"); i >= 0 {
			return s[:i] + "://…"
		}
		return "…"
	}
	u.User = nil
	if u.RawQuery != "" {
		u.RawQuery = "…"
	}
	return u.String()
}

// checkTags applies the rules of every outlet that uses METRICS_TAGS.
func checkTags(c *Config) error {
	tags, err := librato.ParseTags(c.MetricsTags)
	if err != nil {
		return err
	}
	if c.librato() {
		if err := librato.ValidateTags(tags); err != nil {
			return fmt.Errorf("for Librato: %v", err)
		}
	}
	if c.remoteWrite() {
		seen := map[string]string{}
		for name, value := range tags {
			n := promwrite.SanitizeLabelName(name)
			switch {
			case n == "source" || n == "quantile" || strings.HasPrefix(n, "__"):
				return fmt.Errorf("for remote write: label name %s is reserved", n)
			case value == "":
				return fmt.Errorf("for remote write: tag %q has an empty value", name)
			}
			if other, dup := seen[n]; dup {
				return fmt.Errorf("for remote write: tags %q and %q are both label %s", other, name, n)
			}
			seen[n] = name
		}
	}
	return nil
}

// reservedHeaders are the headers the remote-write protocol sets itself (as in
// internal/promwrite, which checks them again).
var reservedHeaders = []string{"Content-Type", "Content-Encoding", "Content-Length", "Host", "X-Prometheus-Remote-Write-Version"}

func checkHeaders(c *Config) error {
	h, err := promwrite.ParseHeaders(c.RemoteWriteHeaders)
	if err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), promwrite.ErrHeaders.Error()+": "))
	}
	for name, value := range h {
		for _, r := range reservedHeaders {
			if strings.EqualFold(name, r) {
				return fmt.Errorf("header %s is set by the protocol", name)
			}
		}
		if strings.ContainsAny(value, "\r\n\x00") {
			return fmt.Errorf("header %s: value contains a line break or NUL", name)
		}
	}
	return nil
}

// together reports a variable set without its partner.
func together(a, av, b, bv, why string) error {
	switch {
	case av != "" && bv == "":
		return fmt.Errorf("%s is set but %s is not: they go together %s", a, b, why)
	case av == "" && bv != "":
		return fmt.Errorf("%s is set but %s is not: they go together %s", b, a, why)
	}
	return nil
}
