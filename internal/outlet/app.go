package outlet

import (
	"slices"
	"strings"
)

// AppPlaceholder is what METRICS_PREFIX may contain, in multi-app mode
// (DRAIN_SECRET), where each series' app goes: "us-east.prod.{app}" names
// the billing app's load_avg_5m "us-east.prod.billing.load_avg_5m".
const AppPlaceholder = "{app}"

// PrefixFor returns the metric name prefix of app's series for the outlets
// that tell series apart by name (Librato, the console): prefix with every
// AppPlaceholder replaced by app. In multi-app mode (app not empty) a prefix
// without the placeholder gets the app as its last component ("us-east" →
// "us-east.billing", "" → "billing"), so that two apps' series never share
// a name. With app empty (single-app mode) prefix is returned as it is.
func PrefixFor(prefix, app string) string {
	if app == "" {
		return prefix
	}
	if strings.Contains(prefix, AppPlaceholder) {
		return strings.ReplaceAll(prefix, AppPlaceholder, app)
	}
	if prefix == "" {
		return app
	}
	return prefix + "." + app
}

// PrefixWithoutApp returns prefix without its AppPlaceholder components, for
// the outlets that carry the app as a label or resource rather than in the
// name (Prometheus remote write, OTLP): "us-east.prod.{app}" →
// "us-east.prod".
func PrefixWithoutApp(prefix string) string {
	if !strings.Contains(prefix, AppPlaceholder) {
		return prefix
	}
	parts := strings.Split(strings.ReplaceAll(prefix, AppPlaceholder, ""), ".")
	return strings.Join(slices.DeleteFunc(parts, func(p string) bool { return p == "" }), ".")
}

// PrefixCache returns PrefixFor(prefix, app) after clean (the outlet's name
// rule), remembered per app so that an outlet builds each app's
// prefix once. The function is not safe for concurrent use.
func PrefixCache(prefix string, clean func(string) string) func(app string) string {
	single, m := clean(prefix), map[string]string{}
	return func(app string) string {
		if app == "" {
			return single
		}
		p, ok := m[app]
		if !ok {
			if len(m) >= maxCachedApps {
				clear(m)
			}
			p = clean(PrefixFor(prefix, app))
			m[app] = p
		}
		return p
	}
}

// maxCachedApps bounds a prefix cache: app names come from authenticated
// requests only, but a cache is no place to grow without bound.
const maxCachedApps = 4096
