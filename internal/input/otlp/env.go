package otlp

import (
	"errors"
	"strings"

	"github.com/dynometrics/dynometrics/internal/envcfg"
)

// Env is the OTLP receiver's environment (a Fir telemetry drain on PORT).
type Env struct {
	SourceAttributes string `envconfig:"OTLP_SOURCE_ATTRIBUTES" default:"heroku.dyno.name" accepts:"comma-separated attribute names, e.g. heroku.dyno.name" desc:"attributes whose value is the source, first found on the record, then the resource"`
	DynoNames        string `envconfig:"FIR_DYNO_NAMES" default:"full" accepts:"full (web-5d8f7c9b4-x2k9p) or type (web)" desc:"keep Fir dyno names as sources, or reduce them to the process type"`
}

// Attributes splits SourceAttributes: comma-separated attribute names,
// spaces around them ignored, empty or over-long ones refused.
func (e Env) Attributes() ([]string, error) {
	if strings.TrimSpace(e.SourceAttributes) == "" {
		return nil, nil
	}
	var out []string
	for _, k := range strings.Split(e.SourceAttributes, ",") {
		k = strings.TrimSpace(k)
		if k == "" || len(k) > 255 {
			return nil, envcfg.Bad("OTLP_SOURCE_ATTRIBUTES", "an empty or over-long attribute name")
		}
		out = append(out, k)
	}
	return out, nil
}

// Validate checks the variables; errors are *envcfg.Error.
func (e Env) Validate() error {
	_, err := e.Attributes()
	if _, derr := ParseDynoNames(e.DynoNames); derr != nil {
		err = errors.Join(err, envcfg.Bad("FIR_DYNO_NAMES", "unknown mode"))
	}
	return err
}
