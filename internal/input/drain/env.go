package drain

import (
	"fmt"

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
