package l2met_test

import (
	"fmt"
	"time"

	"github.com/dynometrics/dynometrics/internal/l2met"
	"github.com/dynometrics/dynometrics/internal/metric"
)

func ExampleParser_Parse() {
	p := l2met.NewParser()
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	lines := []l2met.Line{
		{Time: at, AppName: []byte("app"), ProcID: []byte("web.1"), Msg: []byte("count#req=1 measure#db.latency=4ms")},
		{Time: at, AppName: []byte("heroku"), ProcID: []byte("web.1"), Msg: []byte("source=heroku.2808254.web.1.d97d0ea7-cf3d-411b-b453-d2943a50b456 measure=memory_rss val=21.22 units=MB")},
		{Time: at, AppName: []byte("heroku"), ProcID: []byte("router"), Msg: []byte(`at=error code=H12 desc="Request timeout" dyno=web.2 connect=0ms service=30000ms status=503 bytes=0`)},
		{Time: at, AppName: []byte("heroku"), ProcID: []byte("logplex"), Msg: []byte("Error L10 (output buffer overflow): 500 messages dropped since 2024-05-01T11:59:00+00:00.")},
		{Time: at, AppName: []byte("app"), ProcID: []byte("web.1"), Msg: []byte("count#ok=2 measure#bad=NaN")},
	}
	var ms []metric.Measurement // reuse it across lines: ms = p.Parse(ms[:0], …)
	for _, l := range lines {
		var err error
		ms, err = p.Parse(ms[:0], l)
		for _, m := range ms {
			fmt.Printf("%s %s source=%q value=%v unit=%q\n", m.Kind, m.Name, m.Source, m.Value, m.Unit)
		}
		if err != nil {
			fmt.Println(err)
		}
	}
	// Output:
	// count req source="web.1" value=1 unit=""
	// measure db.latency source="web.1" value=4 unit="ms"
	// measure memory_rss source="web.1" value=21.22 unit="MB"
	// count router.error.H12 source="web.2" value=1 unit=""
	// measure router.connect source="web.2" value=0 unit="ms"
	// measure router.service source="web.2" value=30000 unit="ms"
	// count router.status.5xx source="web.2" value=1 unit=""
	// measure router.bytes source="web.2" value=0 unit="bytes"
	// count logplex.dropped source="" value=500 unit=""
	// count ok source="web.1" value=2 unit=""
	// l2met: 1 rejected, first: measure#bad: value "NaN" is not a number
}
