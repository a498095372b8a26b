package syslog

import (
	"crypto/tls"
	"errors"
	"fmt"

	"github.com/dynometrics/dynometrics/internal/envcfg"
)

// Env is the syslog input's environment.
type Env struct {
	Addr    string `envconfig:"SYSLOG_ADDR" accepts:"a TCP listen address host:port or :port, e.g. :6514" desc:"syslog TCP listen address; unset: no syslog input"`
	TLSCert string `envconfig:"SYSLOG_TLS_CERT" accepts:"a readable PEM certificate file matching SYSLOG_TLS_KEY" desc:"serve syslog over TLS with this certificate (with SYSLOG_TLS_KEY)"`
	TLSKey  string `envconfig:"SYSLOG_TLS_KEY" accepts:"a readable PEM private key file matching SYSLOG_TLS_CERT" desc:"private key of SYSLOG_TLS_CERT"`
}

// Validate checks the variables; errors are *envcfg.Error for one variable.
func (e Env) Validate() error {
	var errs []error
	if e.Addr != "" {
		errs = append(errs, envcfg.ListenAddr("SYSLOG_ADDR", e.Addr))
	}
	if e.TLSCert != "" {
		errs = append(errs, envcfg.File("SYSLOG_TLS_CERT", e.TLSCert))
	}
	if e.TLSKey != "" {
		errs = append(errs, envcfg.File("SYSLOG_TLS_KEY", e.TLSKey))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := envcfg.Together("SYSLOG_TLS_CERT", e.TLSCert, "SYSLOG_TLS_KEY", e.TLSKey, "to serve syslog over TLS"); err != nil || e.TLSCert == "" {
		return err
	}
	if e.Addr == "" {
		return errors.New("SYSLOG_TLS_CERT and SYSLOG_TLS_KEY are set but SYSLOG_ADDR is not: set the address to listen on, e.g. SYSLOG_ADDR=:6514")
	}
	if _, err := tls.LoadX509KeyPair(e.TLSCert, e.TLSKey); err != nil {
		// The error names the files' problem, never their contents.
		return fmt.Errorf("SYSLOG_TLS_CERT=%q and SYSLOG_TLS_KEY=%q: not a matching PEM certificate and key: %v", e.TLSCert, e.TLSKey, err)
	}
	return nil
}
