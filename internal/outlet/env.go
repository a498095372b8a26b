package outlet

import (
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/dynometrics/dynometrics/emitter"
	"github.com/dynometrics/dynometrics/internal/envcfg"
)

// MaxPrefixLen bounds METRICS_PREFIX: the emitter's bound of EMITTER_PREFIX.
const MaxPrefixLen = emitter.MaxPrefixLen

// Env is what every outlet shares: the metric name prefix and the tags.
// Each outlet applies its own naming rules to them (the Librato outlet
// refuses what Librato cannot store, remote write sanitizes label names).
type Env struct {
	Prefix string `envconfig:"METRICS_PREFIX" accepts:"1 to 128 of A-Z a-z 0-9 . : _ - (the same rule as EMITTER_PREFIX), and in multi-app mode {app}" desc:"metric name prefix, e.g. us-east.prod.app; in multi-app mode (DRAIN_SECRET) {app} stands for each series' app, e.g. us-east.prod.{app}"`
	Tags   string `envconfig:"METRICS_TAGS" accepts:"name:value pairs separated by commas, e.g. region:us-east,env:prod" desc:"tags (Librato), labels (remote write) or attributes (OTLP) on every series"`
}

// ParsedTags returns METRICS_TAGS as a map (see ParseTags).
func (e Env) ParsedTags() (map[string]string, error) {
	tags, err := ParseTags(e.Tags)
	if err != nil {
		return nil, envcfg.Bad("METRICS_TAGS", "%v", err)
	}
	return tags, nil
}

// Validate checks the variables; errors are *envcfg.Error.
func (e Env) Validate() error {
	var errs []error
	if len(e.Prefix) > MaxPrefixLen {
		errs = append(errs, envcfg.Bad("METRICS_PREFIX", "%d bytes", len(e.Prefix)))
	}
	// The emitter's name rule: SanitizeName keeps exactly the bytes allowed.
	// AppPlaceholder is checked as a name of its length would be.
	prefix := strings.ReplaceAll(e.Prefix, AppPlaceholder, "_app_")
	if s := emitter.SanitizeName("", prefix); s != prefix {
		i := 0
		for s[i] == prefix[i] {
			i++
		}
		errs = append(errs, envcfg.Bad("METRICS_PREFIX", "%q at byte %d is not allowed", prefix[i], i))
	}
	_, err := e.ParsedTags()
	return errors.Join(append(errs, err)...)
}

// ParseTags parses "name:value,name:value" into a map, neutrally: pairs are
// separated by commas and split at their first colon, spaces around names
// and values are trimmed, case is kept. A pair without a colon, an empty
// name or value, a control character, or a name given twice is refused,
// naming the pair by position. An empty string means no tags (nil).
func ParseTags(s string) (map[string]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	tags := map[string]string{}
	for i, pair := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(pair, ":")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch {
		case !ok:
			return nil, fmt.Errorf("pair %d %q has no ':'", i+1, strings.TrimSpace(pair))
		case k == "" || v == "":
			return nil, fmt.Errorf("pair %d %q: empty name or value", i+1, strings.TrimSpace(pair))
		case strings.IndexFunc(k+v, unicode.IsControl) >= 0:
			return nil, fmt.Errorf("pair %d: control character", i+1)
		}
		if _, dup := tags[k]; dup {
			return nil, fmt.Errorf("pair %d: tag %q given twice", i+1, k)
		}
		tags[k] = v
	}
	return tags, nil
}
