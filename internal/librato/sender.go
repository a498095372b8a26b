package librato

import "time"

const (
	// DefaultTimeout bounds one request, connection to last response byte.
	DefaultTimeout = 10 * time.Second
	// userAgent identifies the outlet to the receiver.
	userAgent = "dynometrics-librato/1"
)
