package librato

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"
)

// Limits of the Librato API that the encoder enforces.
const (
	// MaxNameLen is the longest metric name or source Librato accepts.
	MaxNameLen = 255
	// MaxTagNameLen is the longest tag name on the measurements API.
	MaxTagNameLen = 64
	// MaxTagValueLen is the longest tag value on the measurements API.
	MaxTagValueLen = 255
	// MaxTags is the most tags one measurement may carry, the dyno tag included.
	MaxTags = 50
	// DynoTag is the tag that carries a series' source on the measurements API.
	DynoTag = "dyno"
	// NoSourceDyno is the dyno tag value used when a series has no source and
	// no tags are configured: the measurements API needs at least one tag.
	NoSourceDyno = "none"
	// reservedSource is the source name Librato keeps for itself.
	reservedSource = "all"
	// reservedSourceReplacement is what a series source "all" is sent as.
	reservedSourceReplacement = "_all"
)

// ErrInvalidTags is wrapped by the errors of ParseTags and New for tags that
// break the measurements API's rules.
var ErrInvalidTags = errors.New("invalid tags")

// nameByte reports whether c may appear in a metric name or source:
// [A-Za-z0-9.:_-].
func nameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == ':' || c == '_' || c == '-'
}

// tagValueByte reports whether c may appear in a tag value: [-.:_?\\/\w ].
func tagValueByte(c byte) bool {
	return nameByte(c) || c == '?' || c == '\\' || c == '/' || c == ' '
}

// appendSanitized appends s to dst with every character outside ok replaced
// by '_' (a multi-byte character becomes one '_'), optionally lowercased, and
// stops once dst has grown to limit bytes.
func appendSanitized(dst []byte, s string, limit int, ok func(byte) bool, lower bool) []byte {
	for _, r := range s { // one '_' per rune, and per byte of invalid UTF-8
		if len(dst) >= limit {
			break
		}
		c := byte('_')
		if r < utf8.RuneSelf && ok(byte(r)) {
			c = byte(r)
			if lower && 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
		}
		dst = append(dst, c)
	}
	return dst
}

// appendMetricName appends the quoted metric name prefix.name+suffix.
// Sanitizing rule: characters outside [A-Za-z0-9.:_-] become '_', and
// prefix.name is truncated so that, with its suffix (".median" and the like),
// it is at most MaxNameLen bytes. An empty prefix adds no dot.
func appendMetricName(dst []byte, prefix, name, suffix string) []byte {
	dst = append(dst, '"')
	limit := len(dst) + MaxNameLen - len(suffix)
	if prefix != "" {
		dst = appendSanitized(dst, prefix, limit, nameByte, false)
		if len(dst) < limit {
			dst = append(dst, '.')
		}
	}
	dst = appendSanitized(dst, name, limit, nameByte, false)
	dst = append(dst, suffix...)
	return append(dst, '"')
}

// appendSource appends the quoted legacy-API source: characters outside
// [A-Za-z0-9.:_-] become '_', truncated to MaxNameLen; the reserved source
// "all" (any case) is sent as "_all".
func appendSource(dst []byte, source string) []byte {
	dst = append(dst, '"')
	if strings.EqualFold(source, reservedSource) {
		dst = append(dst, reservedSourceReplacement...)
	} else {
		dst = appendSanitized(dst, source, len(dst)+MaxNameLen, nameByte, false)
	}
	return append(dst, '"')
}

// appendDynoTag appends the quoted dyno tag value: lowercased (as Librato
// stores tags), characters outside [-.:_?\\/A-Za-z0-9 ] become '_', truncated
// to MaxTagValueLen. A backslash is escaped for JSON.
func appendDynoTag(dst []byte, source string) []byte {
	dst = append(dst, '"')
	start := len(dst)
	dst = appendSanitized(dst, source, start+MaxTagValueLen, tagValueByte, true)
	if slices.Contains(dst[start:], '\\') {
		v := string(dst[start:])
		dst = append(dst[:start], strings.ReplaceAll(v, `\`, `\\`)...)
	}
	return append(dst, '"')
}

// SanitizeName returns name as the encoder sends it: characters outside
// [A-Za-z0-9.:_-] replaced by '_', truncated to MaxNameLen bytes.
func SanitizeName(name string) string {
	return string(appendSanitized(nil, name, MaxNameLen, nameByte, false))
}

// ValidateTags checks configured tags against the measurements API's rules:
// names match [-.:_A-Za-z0-9]{1,64}, values [-.:_?\\/A-Za-z0-9 ]{1,255}, at
// most MaxTags-1 tags (the dyno tag is added to each measurement), and no tag
// named "dyno". Errors wrap ErrInvalidTags and name the first offending tag.
func ValidateTags(tags map[string]string) error {
	if len(tags) > MaxTags-1 {
		return fmt.Errorf("tags: %d tags, at most %d allowed (the %q tag makes %d): %w",
			len(tags), MaxTags-1, DynoTag, MaxTags, ErrInvalidTags)
	}
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		v := tags[k]
		switch {
		case k == "" || len(k) > MaxTagNameLen:
			return fmt.Errorf("tags: tag name %q must be 1 to %d characters: %w", k, MaxTagNameLen, ErrInvalidTags)
		case !allBytes(k, nameByte): // a tag name's [-.:_\w]
			return fmt.Errorf("tags: tag name %q may only hold A-Z a-z 0-9 . : _ -: %w", k, ErrInvalidTags)
		case strings.EqualFold(k, DynoTag):
			return fmt.Errorf("tags: tag %q is set from each series' source and cannot be configured: %w", k, ErrInvalidTags)
		case v == "" || len(v) > MaxTagValueLen:
			return fmt.Errorf("tags: tag %q: value must be 1 to %d characters: %w", k, MaxTagValueLen, ErrInvalidTags)
		case !allBytes(v, tagValueByte):
			return fmt.Errorf("tags: tag %q: value %q may only hold A-Z a-z 0-9 . : _ - ? \\ / and spaces: %w", k, v, ErrInvalidTags)
		}
	}
	return nil
}

func allBytes(s string, ok func(byte) bool) bool {
	for i := range len(s) {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}
