package view

import (
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dynometrics/dynometrics/internal/httpauth"
	"github.com/dynometrics/dynometrics/internal/outlet"
)

// Bounds of password guessing on the view (see loginGuard).
const (
	// FreeLoginFailures is how many wrong passwords a client may send
	// before it is slowed down.
	FreeLoginFailures = 5
	// LoginLockout is how long a client is refused after its first failure
	// past FreeLoginFailures; each further failure doubles it, up to
	// MaxLoginLockout.
	LoginLockout    = time.Second
	MaxLoginLockout = 5 * time.Minute
	// LoginForget is how long a client's failures are remembered after its
	// last one.
	LoginForget = 15 * time.Minute
	// MaxLoginClients bounds the clients whose failures are remembered (about
	// 150 bytes each); past it the one that failed least recently is
	// forgotten.
	MaxLoginClients = 10000
	// loginLogEvery: failed logins are logged at most this often.
	loginLogEvery = time.Minute
)

// loginGuard checks the view's Basic credentials and slows down password
// guessing: a client's first FreeLoginFailures wrong passwords are answered
// 401; after that the client is refused 429 with Retry-After, without its
// credentials being checked, for LoginLockout, doubling with each further
// failure up to MaxLoginLockout. The right password clears the client's
// failures. Every failure and refusal is counted (Stats.FailedLogins,
// Stats.LoginsRefused) and logged at most once a minute. At 5,000 guesses a
// second before, a client now gets about 20 guesses in its first 10 minutes
// and 12 an hour after that.
//
// The client is the connection's address, except when the connection comes
// from a loopback or private address (a proxy in front of the worker: on
// Heroku, the router connects to the dyno from a private 10.x address): then
// it is the last entry of X-Forwarded-For. Heroku's router appends the address
// it saw the client connect from as that last entry; entries before it are
// whatever the client sent, so a client can put anything there, but not
// change the last one.
type loginGuard struct {
	auth *httpauth.Basic
	h    *History
	now  func() time.Time

	mu      sync.Mutex
	clients *outlet.LRU[string, loginClient] // used on a failure only; a cleared client is the zero value
	lastLog time.Time
	logged  int64 // failures already reported in a log line
}

type loginClient struct {
	failures int
	last     time.Time // last failure
	until    time.Time // refused until
}

func newLoginGuard(h *History, user, password string) *loginGuard {
	return &loginGuard{auth: httpauth.NewBasic(user, password), h: h, now: h.cfg.Now,
		clients: outlet.NewLRU[string, loginClient](MaxLoginClients, nil)}
}

// clientAddr is the address a request is attributed to (see loginGuard).
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	xff := r.Header.Values("X-Forwarded-For")
	if ip == nil || !(ip.IsLoopback() || ip.IsPrivate()) || len(xff) == 0 {
		return host
	}
	last := xff[len(xff)-1]
	last = last[strings.LastIndexByte(last, ',')+1:] // the whole value without a comma
	if last = strings.TrimSpace(last); last == "" || len(last) > 64 {
		return host
	}
	return last
}

// wrap requires the credentials on every request of next.
func (g *loginGuard) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr := clientAddr(r)
		now := g.now()
		if wait := g.locked(addr, now); wait > 0 {
			g.h.countLogin(false)
			w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
			http.Error(w, "view: too many failed logins, retry later", http.StatusTooManyRequests)
			return
		}
		if !g.auth.Check(r) {
			if r.Header.Get("Authorization") != "" { // a browser's first request carries none
				g.fail(addr, now)
			}
			w.Header().Set("WWW-Authenticate", `Basic realm="dynometrics view", charset="UTF-8"`)
			http.Error(w, "view: unauthorized", http.StatusUnauthorized)
			return
		}
		g.succeed(addr)
		next.ServeHTTP(w, r)
	})
}

// locked returns how long addr is still refused.
func (g *loginGuard) locked(addr string, now time.Time) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.clients.Peek(addr)
	if c == nil {
		return 0
	}
	if now.Sub(c.last) > LoginForget {
		*c = loginClient{}
	}
	return max(c.until.Sub(now), 0)
}

// fail records a wrong password from addr, and logs failures at most once
// per loginLogEvery.
func (g *loginGuard) fail(addr string, now time.Time) {
	total := g.h.countLogin(true)
	g.mu.Lock()
	c, _ := g.clients.Get(addr)
	c.failures++
	c.last = now
	if n := c.failures - FreeLoginFailures; n > 0 {
		c.until = now.Add(min(LoginLockout<<min(n-1, 20), MaxLoginLockout))
	}
	failures, tracked := c.failures, g.clients.Len()
	log := g.lastLog.IsZero() || now.Sub(g.lastLog) >= loginLogEvery
	since := total - g.logged
	if log {
		g.lastLog, g.logged = now, total
	}
	g.mu.Unlock()
	if log {
		g.h.cfg.Logger.Warn("view: failed login (logged at most once a minute; all counted in worker.view.failed_logins)",
			"client", addr, "client_failures", failures, "failures_since_last_log", since, "clients_tracked", tracked)
	}
}

// succeed forgets addr's failures.
func (g *loginGuard) succeed(addr string) {
	g.mu.Lock()
	if c := g.clients.Peek(addr); c != nil {
		*c = loginClient{}
	}
	g.mu.Unlock()
}
