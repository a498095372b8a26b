package redistest

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/testproc"
)

// Cluster is a running Redis Cluster of three masters (no replicas) on
// 127.0.0.1, without persistence.
//
//	c := redistest.StartCluster(t) // skips without redis-server or redis-cli (fails when CI=true)
//	// … connect a cluster client to c.URL (redis://127.0.0.1:PORT, any node) …
type Cluster struct {
	Nodes []*Server // the masters; Nodes[i].Do talks to one node
	URL   string    // redis://<first node>: a seed address for a cluster client
}

// CLIBinary returns the path of redis-cli ($REDIS_CLI_BIN, PATH, /usr/bin),
// or "" when none is found.
func CLIBinary() string { return testproc.Find("REDIS_CLI_BIN", "redis-cli") }

// StartCluster starts three cluster-enabled redis-server processes, joins
// them with redis-cli --cluster create (the 16384 slots split over the
// three), waits until every node reports cluster_state:ok, and stops them
// in t.Cleanup. Without the binaries it skips the test, unless CI=true,
// where it fails it.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	bin, cli := Binary(), CLIBinary()
	if bin == "" || cli == "" {
		testproc.Missing(t, "redistest: no redis-server or redis-cli binary (apt-get install redis-server redis-tools, or set REDIS_SERVER_BIN and REDIS_CLI_BIN)")
		return nil
	}
	c := &Cluster{}
	dir := t.TempDir()
	var addrs []string
	for i := range 3 {
		s, err := start(bin, dir, "", "--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, fmt.Sprintf("nodes-%d.conf", i)))
		if err != nil {
			t.Fatalf("redistest: cluster node: %v", err)
		}
		s.stopAtEnd(t)
		c.Nodes = append(c.Nodes, s)
		addrs = append(addrs, s.Addr)
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, s := range c.Nodes {
		ok := func() bool {
			info, err := s.Do("CLUSTER", "INFO")
			return err == nil && strings.Contains(info, "cluster_state:ok")
		}
		if err := s.proc.WaitReady(ok, 50*time.Millisecond, ReadyTimeout); err != nil {
			t.Fatalf("redistest: cluster node %s without cluster_state:ok: %v", s.Addr, err)
		}
	}
	c.URL = "redis://" + addrs[0]
	return c
}
