package input

import (
	"time"

	"github.com/dynometrics/dynometrics/internal/logplex"
)

// Message processes one log message that arrived without a syslog header of
// its own, such as the body of an OpenTelemetry log record: t is its time,
// appName and procID play the part of the syslog APP-NAME and PROCID (procID
// is the source of metric pairs without a source= pair; appName "heroku" with
// procID "router" selects the router parser). A zero t means the arrival time.
// A message over MaxLineBytes is counted (Stats.OverlongLines) and skipped.
func (s *Session) Message(t time.Time, appName, procID, msg []byte) {
	if len(msg) > s.p.maxLine {
		s.st.OverlongLines++
		return
	}
	h := logplex.Header{Time: t, AppName: appName, ProcID: procID}
	s.parse(&h, msg)
}
