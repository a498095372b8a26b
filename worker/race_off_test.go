//go:build !race

package main

// raceEnabled says the race detector is on.
const raceEnabled = false
