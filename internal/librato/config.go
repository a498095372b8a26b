package librato

import (
	"cmp"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/dynometrics/dynometrics/internal/envcfg"
)

// Env is the Librato outlet's environment. LIBRATO_TOKEN enables it.
type Env struct {
	User  string `envconfig:"LIBRATO_USER" accepts:"the Librato account's email" desc:"Librato account email (empty with LIBRATO_API=measurements: AppOptics token auth)"`
	Token string `envconfig:"LIBRATO_TOKEN" secret:"true" accepts:"a Librato or AppOptics API token" desc:"Librato/AppOptics API token; set: enables the Librato outlet"`
	URL   string `envconfig:"LIBRATO_URL" default:"https://metrics-api.librato.com" accepts:"an http(s) base URL such as https://metrics-api.librato.com" desc:"Librato API base URL"`
	API   string `envconfig:"LIBRATO_API" default:"metrics" accepts:"metrics (legacy source API) or measurements (tagged API)" desc:"which Librato API to send to"`
}

// Enabled reports whether LIBRATO_TOKEN is set.
func (e Env) Enabled() bool { return e.Token != "" }

// Validate checks the variables and, when the outlet is enabled, the tags
// (METRICS_TAGS, parsed neutrally) against what Librato can store.
func (e Env) Validate(tags map[string]string) error {
	if !e.Enabled() {
		if e.User != "" {
			return errors.New("LIBRATO_USER is set but LIBRATO_TOKEN is not: the token enables the Librato outlet")
		}
		return nil
	}
	_, _, err := Config{User: e.User, Token: e.Token, URL: e.URL, API: e.API, Tags: tags}.check()
	return err
}

// check applies the defaults and Librato's rules to c, and returns it with
// the tags lower-cased (as Librato stores them) and the parsed base URL.
// Every error names the variable and never quotes the token.
func (c Config) check() (Config, *url.URL, error) {
	if c.Token == "" {
		return c, nil, errors.New("LIBRATO_TOKEN is empty: the API token is required")
	}
	c.API, c.URL = cmp.Or(c.API, APIMetrics), cmp.Or(c.URL, DefaultURL)
	var errs []error
	if c.API != APIMetrics && c.API != APIMeasurements {
		errs = append(errs, envcfg.Bad("LIBRATO_API", "unknown API"))
	} else if c.User == "" && c.API == APIMetrics {
		errs = append(errs, errors.New("LIBRATO_TOKEN is set without LIBRATO_USER: the metrics (source) API needs the account email; "+
			"a token alone works only with LIBRATO_API=measurements (AppOptics token auth)"))
	}
	u, err := url.Parse(c.URL)
	errs = append(errs, envcfg.URL("LIBRATO_URL", c.URL, true)) // errors.Join drops nil
	tags, terr := lowerTags(c.Tags)
	if terr != nil {
		msg := strings.TrimSuffix(strings.TrimPrefix(terr.Error(), "tags: "), ": "+ErrInvalidTags.Error())
		errs = append(errs, envcfg.Bad("METRICS_TAGS", "for Librato: %s", msg))
	}
	c.Tags = tags
	if err := errors.Join(errs...); err != nil {
		return c, nil, err
	}
	return c, u, err
}

// lowerTags returns tags lower-cased, as Librato stores them, checked
// against ValidateTags.
func lowerTags(tags map[string]string) (map[string]string, error) {
	if tags == nil {
		return nil, nil
	}
	out := make(map[string]string, len(tags))
	for k, v := range tags {
		lk := strings.ToLower(k)
		if _, dup := out[lk]; dup {
			return nil, fmt.Errorf("tags: tag %q given twice, ignoring case: %w", lk, ErrInvalidTags)
		}
		out[lk] = strings.ToLower(v)
	}
	return out, ValidateTags(out)
}
