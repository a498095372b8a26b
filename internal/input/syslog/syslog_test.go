package syslog_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/input"
	"github.com/dynometrics/dynometrics/internal/input/inputtest"
	"github.com/dynometrics/dynometrics/internal/input/syslog"
)

const (
	// RFC 5424 as a Heroku syslog drain sends it: the drain token as HOSTNAME,
	// "- -" for MSGID and STRUCTURED-DATA.
	msgA = "<190>1 2024-05-01T12:00:00.200000+00:00 d.7f3a1c app web.1 - - count#req=1 measure#db.latency=4ms"
	msgB = `<190>1 2024-05-01T12:00:00.300000+00:00 d.7f3a1c app web.2 - [meta x="1"] sample#queue.depth=7`
)

var (
	wantA = []string{
		"2024-05-01T12:00:00.2Z web.1 count req=1",
		"2024-05-01T12:00:00.2Z web.1 measure db.latency=4ms",
	}
	wantB = []string{"2024-05-01T12:00:00.3Z web.2 sample queue.depth=7"}
)

// frame octet-counts msg as RFC 6587 senders do (no trailing LF).
func frame(msg string) string { return strconv.Itoa(len(msg)) + " " + msg }

type fixture struct {
	srv   *syslog.Server
	p     *input.Processor
	rec   *inputtest.Recorder
	addr  string
	serve chan error
}

func start(t *testing.T, cfg syslog.Config) *fixture {
	t.Helper()
	f := &fixture{rec: inputtest.NewRecorder(), serve: make(chan error, 1)}
	var err error
	if f.p, err = input.NewProcessor(f.rec, input.Config{}); err != nil {
		t.Fatal(err)
	}
	if f.srv, err = syslog.New(f.p, cfg); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = l.Addr().String()
	go func() { f.serve <- f.srv.Serve(l) }()
	t.Cleanup(func() { f.close(t) })
	return f
}

func (f *fixture) close(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.srv.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
	select {
	case err := <-f.serve:
		if !errors.Is(err, syslog.ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
		f.serve <- err // for a second close
	case <-time.After(5 * time.Second):
		t.Error("Serve did not return after Close")
	}
}

func TestTCP(t *testing.T) {
	f := start(t, syslog.Config{})
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	// Octet counted and newline delimited, with a malformed frame between.
	stream := frame(msgA) + "\n" + "999 <190>1 broken\n" + msgB + "\n" + frame(msgA)
	if _, err := io.WriteString(c, stream); err != nil {
		t.Fatal(err)
	}
	c.Close()
	want := slices.Concat(wantA, wantB, wantA)
	if !f.rec.WaitLen(len(want), 5*time.Second) {
		t.Fatalf("got %q", f.rec.Lines())
	}
	if got := f.rec.Lines(); !slices.Equal(got, want) {
		t.Errorf("measurements:\n got %q\nwant %q", got, want)
	}
	waitFor(t, func() bool { return f.srv.Stats().Active == 0 })
	if got := f.p.Stats(); got.Lines != 3 || got.MalformedFrames != 1 {
		t.Errorf("processor stats = %+v", got)
	}
	if got := f.srv.Stats(); got != (syslog.Stats{Accepted: 1}) {
		t.Errorf("server stats = %+v", got)
	}
}

func TestTLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	f := start(t, syslog.Config{TLSCertFile: certFile, TLSKeyFile: keyFile})
	if !f.srv.TLS() {
		t.Fatal("TLS not enabled")
	}
	c, err := tls.Dial("tcp", f.addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, frame(msgA)+frame(msgB)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	want := slices.Concat(wantA, wantB)
	if !f.rec.WaitLen(len(want), 5*time.Second) {
		t.Fatalf("got %q", f.rec.Lines())
	}
	if got := f.rec.Lines(); !slices.Equal(got, want) {
		t.Errorf("measurements:\n got %q\nwant %q", got, want)
	}

	// A plain-text client fails the handshake.
	pc, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(pc, frame(msgA)+"\n")
	pc.Close()
	waitFor(t, func() bool { return f.srv.Stats().HandshakeErrors == 1 })
	if got := f.rec.Len(); got != len(want) {
		t.Errorf("plain-text data reached the sink: %d measurements", got)
	}
}

func TestIdleTimeout(t *testing.T) {
	f := start(t, syslog.Config{IdleTimeout: 200 * time.Millisecond})
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, msgA+"\n"); err != nil {
		t.Fatal(err)
	}
	// The measurements arrive while the connection is open and idle.
	if !f.rec.WaitLen(2, 5*time.Second) {
		t.Fatalf("got %q", f.rec.Lines())
	}
	// Then the server closes it.
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("read after idle timeout = %v, want EOF", err)
	}
	waitFor(t, func() bool { return f.srv.Stats().IdleTimeouts == 1 })
	if got := f.rec.Lines(); !slices.Equal(got, wantA) {
		t.Errorf("got %q, want %q", got, wantA)
	}
}

func TestMaxConns(t *testing.T) {
	f := start(t, syslog.Config{MaxConns: 1})
	c1, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c1, msgA+"\n")
	if !f.rec.WaitLen(2, 5*time.Second) {
		t.Fatal("first connection not served")
	}
	c2, err := net.Dial("tcp", f.addr) // waits in the backlog
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	io.WriteString(c2, msgB+"\n")
	time.Sleep(100 * time.Millisecond)
	if got := f.rec.Len(); got != 2 {
		t.Fatalf("second connection served while the first is open: %d measurements", got)
	}
	if st := f.srv.Stats(); st.Saturated != 1 || st.Active != 1 {
		t.Errorf("stats = %+v", st)
	}
	c1.Close()
	if !f.rec.WaitLen(3, 5*time.Second) {
		t.Fatal("second connection not served after the first closed")
	}
}

// TestClose checks that Close ends open connections and that what they sent
// reached the sink.
func TestClose(t *testing.T) {
	f := start(t, syslog.Config{})
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A newline-delimited frame, then an octet-counted one in the same write:
	// both must have reached the sink when Close returns.
	io.WriteString(c, msgB+"\n"+frame(msgA))
	if !f.rec.WaitLen(1, 5*time.Second) {
		t.Fatal("first frame not delivered")
	}
	f.close(t)
	if got, want := f.rec.Lines(), slices.Concat(wantB, wantA); !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if st := f.srv.Stats(); st.ReadErrors != 0 || st.IdleTimeouts != 0 || st.Active != 0 {
		t.Errorf("stats = %+v", st)
	}
	if _, err := net.Dial("tcp", f.addr); err == nil {
		t.Error("listener still open after Close")
	}
}

func TestNew(t *testing.T) {
	p, err := input.NewProcessor(inputtest.NewRecorder(), input.Config{})
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, _ := selfSigned(t)
	missing := filepath.Join(t.TempDir(), "missing.pem")
	for name, cfg := range map[string]syslog.Config{
		"cert without key": {TLSCertFile: certFile},
		"key without cert": {TLSKeyFile: keyFile},
		"missing key file": {TLSCertFile: certFile, TLSKeyFile: missing},
		"key as cert":      {TLSCertFile: keyFile, TLSKeyFile: keyFile},
		"negative bound":   {MaxConns: -1},
	} {
		_, err := syslog.New(p, cfg)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if strings.Contains(err.Error(), "PRIVATE KEY") {
			t.Errorf("%s: error shows key material: %v", name, err)
		}
	}
	if _, err := syslog.New(nil, syslog.Config{}); err == nil {
		t.Error("nil Processor accepted")
	}
	srv, err := syslog.New(p, syslog.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.ListenAndServe(); err == nil {
		t.Error("ListenAndServe without Addr succeeded")
	}
}

// selfSigned writes a fresh self-signed certificate for 127.0.0.1 and its key
// to a temporary directory.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "dynometrics test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
		time.Sleep(time.Millisecond)
	}
}
