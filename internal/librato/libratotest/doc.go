// Package libratotest is a strict, in-process fake of the Librato metrics API
// for tests anywhere in the repository.
//
// It serves POST /v1/metrics (legacy, source-based) and POST /v1/measurements
// (tagged, also the AppOptics shape) on 127.0.0.1, enforces the documented
// rules and answers violations the way Librato does, with a 4xx status and a
// body such as
//
//	{"errors":{"params":{"measure_time":["is too far in the past"]}}}
//
// Every accepted measurement is recorded, flattened:
//
//	srv := libratotest.New(t, libratotest.Options{User: "u@example.com", Token: "t0k"})
//	// … point the outlet at srv.URL …
//	m, ok := srv.Find("app.router.service", "web.1")
//
// Faults can be injected for the next N requests: an HTTP status (500, 503,
// 429 with rate-limit headers), a delay, or a dropped connection.
//
// What it checks, per request: method POST, Content-Type application/json,
// Basic auth (or, with Options.AppOptics, the token as user and an empty
// password on /v1/measurements), a JSON body without unknown fields, at least
// one measurement, at most 300 (/v1/metrics, a strict reading of the
// recommendation) or 1,000 (/v1/measurements), integer times no older than
// MaxAge, names and sources of 1-255 [A-Za-z0-9.:_-] and not the reserved
// source "all", a value xor count+sum (a complex gauge), no value of magnitude
// ≥ 1e126, tag names [-.:_\w]{1,64}, values [-.:_?\\/\w ]{1,255}, at least one
// and at most 50 tags per measurement.
package libratotest
