// Package backoff computes retry delays: exponential growth with "equal
// jitter", so that many dynos (or many batches) retrying after the same failure
// spread out instead of hitting the server again in step. Both the log-session
// tailer's reconnects and the outlets' delivery queue use it.
//
// With min 500ms and max 30s, attempts 1, 2, 3, … wait a random delay in
// [250ms, 500ms], [500ms, 1s], [1s, 2s], … up to [15s, 30s].
package backoff

import (
	"math/rand/v2"
	"time"
)

// EqualJitter returns the delay before retry number attempt (1 for the first
// retry): d = min(maxB, minB·2^(attempt-1)), then a uniformly random delay in
// [d/2, d]. Safe for concurrent use.
func EqualJitter(minB, maxB time.Duration, attempt int) time.Duration {
	d := minB
	for i := 1; i < attempt && d < maxB; i++ {
		d *= 2
	}
	d = min(d, maxB)
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(d-half+1)
}
