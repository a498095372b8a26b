package logsession

import (
	"errors"
	"regexp"

	"github.com/dynometrics/dynometrics/internal/envcfg"
)

// Env is the log-session tailer's environment.
type Env struct {
	APIKey  string `envconfig:"HEROKU_API_KEY" secret:"true" accepts:"a Platform API key (heroku authorizations:create)" desc:"tail the app's own logs through log sessions"`
	App     string `envconfig:"HEROKU_APP_NAME" accepts:"a Heroku app name (lower-case letters, digits, dashes) or app id" desc:"app whose logs are tailed (with HEROKU_API_KEY)"`
	BaseURL string `envconfig:"HEROKU_API_URL" default:"https://api.heroku.com" accepts:"an http(s) base URL such as https://api.heroku.com" desc:"Platform API base URL"`
}

var appName = regexp.MustCompile(`^([a-z][a-z0-9-]{1,29}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$`)

// Validate checks the variables; errors are *envcfg.Error for one variable.
func (e Env) Validate() error {
	var errs []error
	if e.App != "" && !appName.MatchString(e.App) {
		errs = append(errs, envcfg.Bad("HEROKU_APP_NAME", "not an app name"))
	}
	if e.BaseURL != "" {
		errs = append(errs, envcfg.URL("HEROKU_API_URL", e.BaseURL, true))
	}
	errs = append(errs, envcfg.Together("HEROKU_API_KEY", e.APIKey, "HEROKU_APP_NAME", e.App, "to tail the app's logs through log sessions"))
	return errors.Join(errs...)
}
