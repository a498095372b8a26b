//go:build race

package main

// raceEnabled says the race detector is on: tests that would take minutes
// under it skip and run without it (.ci/run runs them so).
const raceEnabled = true
