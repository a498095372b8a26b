package logplex_test

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/dynometrics/dynometrics/internal/logplex"
)

func Example() {
	body := "92 <190>1 2024-05-01T12:00:00.200000+00:00 host app web.1 - count#req=1 measure#db.latency=4ms\n" +
		"12x garbage\n" +
		"72 <158>1 2024-05-01T12:00:00.123456+00:00 host heroku router - status=200\n"
	s := logplex.NewScanner(strings.NewReader(body), logplex.DefaultMaxFrame)
	for {
		frame, err := s.Next()
		if err == io.EOF {
			break
		}
		var fe *logplex.FrameError
		if errors.As(err, &fe) {
			fmt.Println("skipped:", fe)
			continue
		}
		if err != nil {
			fmt.Println("broken stream:", err)
			return
		}
		h, msg, err := logplex.ParseMessage(frame)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("%s %s[%s]: %s\n", h.Time.Format("15:04:05.000"), h.AppName, h.ProcID, msg)
	}
	fmt.Printf("%+v\n", s.Stats())
	// Output:
	// 12:00:00.200 app[web.1]: count#req=1 measure#db.latency=4ms
	// skipped: logplex: frame 2 at byte 95: length prefix has 'x' at byte 2
	// 12:00:00.123 heroku[router]: status=200
	// {Frames:2 Bytes:170 BadFrames:1 Oversize:0 Truncated:0 Misaligned:0 SkippedBytes:12}
}

func ExampleParseText() {
	h, msg, err := logplex.ParseText([]byte("2024-05-01T14:00:00.5+02:00 app[worker.2]: count#jobs=3"))
	fmt.Println(h.Time, string(h.AppName), string(h.ProcID), string(msg), err)
	// Output: 2024-05-01 12:00:00.5 +0000 UTC app worker.2 count#jobs=3 <nil>
}

func ExampleParseAny() {
	for _, line := range []string{
		"<14>1 - d.token app web.1 - - count#a=1",
		"2024-05-01T12:00:00Z app[web.2]: count#b=1",
		"count#c=1",
	} {
		h, msg := logplex.ParseAny([]byte(line))
		fmt.Printf("proc=%q msg=%q\n", h.ProcID, msg)
	}
	// Output:
	// proc="web.1" msg="count#a=1"
	// proc="web.2" msg="count#b=1"
	// proc="" msg="count#c=1"
}
