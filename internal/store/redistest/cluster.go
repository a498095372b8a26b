package redistest

import (
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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
	t.Cleanup(func() {
		for _, s := range c.Nodes {
			if s.proc == nil {
				continue
			}
			if err := s.proc.Stop(syscall.SIGTERM, StopTimeout); err != nil {
				t.Errorf("redistest: stop cluster node %s: %v", s.Addr, err)
			}
			if t.Failed() {
				t.Logf("redistest: cluster node %s output:\n%s", s.Addr, s.proc.Log.String())
			}
		}
	})
	dir := t.TempDir()
	var addrs []string
	for i := range 3 {
		port, err := testproc.FreePort()
		if err != nil {
			t.Fatalf("redistest: pick a port: %v", err)
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		s := &Server{Addr: addr, URL: "redis://" + addr, bin: bin, dir: dir}
		s.proc, err = testproc.Start(exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, fmt.Sprintf("nodes-%d.conf", i)),
			"--save", "", "--appendonly", "no", "--dir", dir, "--loglevel", "warning"), MaxLog)
		if err != nil {
			t.Fatalf("redistest: start cluster node: %v", err)
		}
		c.Nodes = append(c.Nodes, s)
		ready := func() bool { reply, err := s.Do("PING"); return err == nil && reply == "PONG" }
		if err := s.proc.WaitReady(ready, 20*time.Millisecond, ReadyTimeout); err != nil {
			t.Fatalf("redistest: cluster node %s: %v", addr, err)
		}
		addrs = append(addrs, addr)
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(ReadyTimeout)
	for _, s := range c.Nodes {
		for {
			info, err := s.info("CLUSTER", "INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("redistest: cluster node %s not ok after %v: %v %s", s.Addr, ReadyTimeout, err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	c.URL = "redis://" + addrs[0]
	return c
}

// info runs a command whose reply is a multi-line bulk string (INFO,
// CLUSTER INFO) with redis-cli and returns it.
func (s *Server) info(args ...string) (string, error) {
	host, port, _ := net.SplitHostPort(s.Addr)
	out, err := exec.Command(CLIBinary(), append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
	return string(out), err
}
