package view

import (
	"errors"
	"time"

	"github.com/dynometrics/dynometrics/internal/envcfg"
)

// Env is the live view's environment.
type Env struct {
	User      string        `envconfig:"VIEW_USER" accepts:"a Basic auth user name without ':' (with VIEW_PASSWORD)" desc:"Basic auth user of the live view"`
	Password  string        `envconfig:"VIEW_PASSWORD" secret:"true" accepts:"a password other than DRAIN_PASSWORD (with VIEW_USER)" desc:"set: the live view is served at / on PORT, and on -view's address, behind Basic auth"`
	Window    time.Duration `envconfig:"VIEW_WINDOW" default:"6h" accepts:"a duration of at least METRICS_RESOLUTION, e.g. 6h" desc:"how far back the live view's history reaches"`
	MaxPoints int           `envconfig:"VIEW_MAX_POINTS" default:"720" accepts:"a positive number of points per line (1 or more), e.g. 720" desc:"points kept per line of the live view, whatever VIEW_WINDOW"`
	MaxSeries int           `envconfig:"VIEW_MAX_SERIES" default:"2000" accepts:"a positive number of per-dyno series (1 or more), e.g. 2000" desc:"per-dyno series the live view keeps; more are dropped and counted"`
}

// Validate checks the variables; resolution is METRICS_RESOLUTION, the
// shortest VIEW_WINDOW. Errors are *envcfg.Error for one variable.
func (e Env) Validate(resolution time.Duration) error {
	errs := []error{envcfg.NoneOf("VIEW_USER", e.User, ":")}
	if e.Window < resolution {
		errs = append(errs, envcfg.Bad("VIEW_WINDOW", "shorter than METRICS_RESOLUTION=%s", resolution))
	}
	if e.MaxPoints < 1 {
		errs = append(errs, envcfg.Bad("VIEW_MAX_POINTS", "not positive"))
	}
	if e.MaxSeries < 1 {
		errs = append(errs, envcfg.Bad("VIEW_MAX_SERIES", "not positive"))
	}
	errs = append(errs, envcfg.Together("VIEW_USER", e.User, "VIEW_PASSWORD", e.Password, "to serve the live view behind Basic auth"))
	return errors.Join(errs...)
}
