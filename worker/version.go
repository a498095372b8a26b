package main

import (
	"cmp"
	"runtime/debug"
	"strings"
)

// versionString describes this build from the information the Go toolchain
// embeds: the module version (set by `go install …@version`), else the VCS
// revision and time of a build from a clone, and the Go version.
//
//	worker v1.2.0 (go1.26.8)
//	worker (devel) a1b2c3d4e5f6 2026-12-01T14:00:00Z modified (go1.26.8)
func versionString() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "worker (unknown version: built without module support)"
	}
	return formatVersion(bi)
}

func formatVersion(bi *debug.BuildInfo) string {
	parts := []string{"worker", cmp.Or(bi.Main.Version, "(devel)")}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if rev := settings["vcs.revision"]; rev != "" {
		parts = append(parts, rev[:min(len(rev), 12)])
		if t := settings["vcs.time"]; t != "" {
			parts = append(parts, t)
		}
		if settings["vcs.modified"] == "true" {
			parts = append(parts, "modified")
		}
	}
	return strings.Join(parts, " ") + " (" + bi.GoVersion + ")"
}
