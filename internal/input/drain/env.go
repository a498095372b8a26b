package drain

import (
	"fmt"
	"strings"

	"github.com/dynometrics/dynometrics/internal/appauth"
	"github.com/dynometrics/dynometrics/internal/envcfg"
)

// Env is the drain's environment: the HTTP port it (with the OTLP receiver
// and the live view) is served on, and its Basic auth credentials.
type Env struct {
	Port           string `envconfig:"PORT" accepts:"a TCP port number, 1 to 65535 (Heroku sets it)" desc:"HTTP listen port: drain (POST /logs, GET /health) and OTLP receiver (POST /v1/logs, /v1/metrics); unset: no HTTP input"`
	BindAddr       string `envconfig:"BIND_ADDR" accepts:"an IP address or host name to listen on with PORT, e.g. 127.0.0.1 or ::1" desc:"address PORT listens on; unset: every interface"`
	User           string `envconfig:"DRAIN_USER" accepts:"a Basic auth user name without ':'" desc:"Basic auth user the drain URL carries (required with PORT)"`
	Password       string `envconfig:"DRAIN_PASSWORD" secret:"true" accepts:"any password (e.g. openssl rand -hex 16)" desc:"Basic auth password the drain URL carries (required with PORT)"`
	InsecureNoAuth bool   `envconfig:"DRAIN_INSECURE_NO_AUTH" default:"false" accepts:"true or false" desc:"accept drain POSTs without credentials (logs a warning)"`
	Secret         string `envconfig:"DRAIN_SECRET" secret:"true" accepts:"comma-separated secrets of at least 32 characters each (e.g. openssl rand -hex 32); the first signs new drain URLs, every one verifies" desc:"multi-app mode: each app's drain password is derived from this and the app's name (worker -drain-url APP prints it); excludes DRAIN_USER and DRAIN_PASSWORD (docs/multi-app.md)"`
	Host           string `envconfig:"DRAIN_HOST" accepts:"a host name, with :port if not 443, e.g. myapp-metrics-1a2b.herokuapp.com" desc:"the host worker -drain-url puts in the drain URLs it prints (flag -drain-host overrides it)"`
}

// MultiApp reports whether DRAIN_SECRET turns on multi-app mode.
func (e Env) MultiApp() bool { return e.Secret != "" }

// Apps returns the keyring of DRAIN_SECRET, nil in single-app mode. Errors
// never carry a secret.
func (e Env) Apps() (*appauth.Keyring, error) {
	if e.Secret == "" {
		return nil, nil
	}
	k, err := appauth.Parse(e.Secret)
	if err != nil {
		return nil, envcfg.Bad("DRAIN_SECRET", "%v", err)
	}
	return k, nil
}

// Validate checks the variables; errors are *envcfg.Error for one variable.
func (e Env) Validate() error {
	if e.Port != "" {
		if err := envcfg.Port("PORT", e.Port); err != nil {
			return err
		}
	}
	if e.BindAddr != "" {
		if err := envcfg.Host("BIND_ADDR", e.BindAddr); err != nil {
			return err
		}
	}
	if err := envcfg.NoneOf("DRAIN_USER", e.User, ":"); err != nil {
		return err
	}
	if e.Host != "" && (strings.ContainsAny(e.Host, "/@?# ") || strings.Contains(e.Host, "://")) {
		return envcfg.Bad("DRAIN_HOST", "not a bare host name (no scheme, path or credentials)")
	}
	if e.Secret != "" {
		if e.User != "" || e.Password != "" || e.InsecureNoAuth {
			return envcfg.Bad("DRAIN_SECRET", "set together with DRAIN_USER, DRAIN_PASSWORD or DRAIN_INSECURE_NO_AUTH: "+
				"DRAIN_SECRET (multi-app mode, a password per app) replaces them; unset one or the other")
		}
		_, err := e.Apps()
		return err
	}
	if e.Port == "" || e.InsecureNoAuth || (e.User != "" && e.Password != "") {
		return nil
	}
	missing := "DRAIN_USER and DRAIN_PASSWORD are"
	switch {
	case e.User != "":
		missing = "DRAIN_PASSWORD is"
	case e.Password != "":
		missing = "DRAIN_USER is"
	}
	return fmt.Errorf("PORT=%s serves the drain, but %s not set: the drain URL carries these credentials "+
		"(or set DRAIN_INSECURE_NO_AUTH=true to accept unauthenticated POSTs)", e.Port, missing)
}
