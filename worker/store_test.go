package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestRedisConfigErrors(t *testing.T) {
	valid := func() Config {
		c := viewConfig() // a valid configuration
		c.Redis.Handover, c.Redis.FallbackAfter, c.Redis.Partitions, c.Redis.LeaseTTL = 2*time.Second, 2*time.Minute, 16, 15*time.Second
		return c
	}
	for name, tc := range map[string]struct {
		change func(*Config)
		want   string
	}{
		"redis":                    {func(c *Config) { c.Redis.URL = "redis://h:1" }, ""},
		"skip verify without url":  {func(c *Config) { c.Redis.TLSSkipVerify = true }, `REDIS_TLS_SKIP_VERIFY="true": set but REDIS_URL is not`},
		"skip verify on redis://":  {func(c *Config) { c.Redis.URL, c.Redis.TLSSkipVerify = "redis://h:1", true }, `REDIS_TLS_SKIP_VERIFY="true": true with a redis:// REDIS_URL`},
		"skip verify on rediss://": {func(c *Config) { c.Redis.URL, c.Redis.TLSSkipVerify = "rediss://h:1", true }, ""},
		"handover beyond grace":    {func(c *Config) { c.Redis.URL, c.Redis.Handover = "redis://h:1", 10*time.Second }, `REDIS_HANDOVER="10s": not within (0, METRICS_GRACE=10s)`},
		"no handover":              {func(c *Config) { c.Redis.URL, c.Redis.Handover = "redis://h:1", 0 }, `REDIS_HANDOVER="0s": not within`},
		"no fallback":              {func(c *Config) { c.Redis.URL, c.Redis.FallbackAfter = "redis://h:1", 0 }, `REDIS_FALLBACK_AFTER="0s": not positive`},
		"partitions":               {func(c *Config) { c.Redis.URL, c.Redis.Partitions = "redis://h:1", 0 }, `REDIS_PARTITIONS="0": out of range; want 1 to 1024`},
		"lease ttl":                {func(c *Config) { c.Redis.URL, c.Redis.LeaseTTL = "redis://h:1", time.Millisecond }, `REDIS_LEASE_TTL="1ms": below 1s`},
	} {
		t.Run(name, func(t *testing.T) {
			c := valid()
			tc.change(&c)
			err := c.validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestRedisURLErrorsHideThePassword: a bad REDIS_URL is named, its password
// never printed.
func TestRedisURLErrorsHideThePassword(t *testing.T) {
	for _, url := range []string{"http://u:secret-token@h:1", "redis://u:secret-token@h :1", "redis://u:secret-token@h:1/x"} {
		t.Setenv("REDIS_URL", url)
		var stdout, stderr bytes.Buffer
		if code := realMain([]string{"-stdin"}, strings.NewReader(""), &stdout, &stderr); code == 0 {
			t.Fatalf("%s: exit 0", url)
		}
		if !strings.Contains(stderr.String(), "REDIS_URL") || strings.Contains(stderr.String(), "secret-token") {
			t.Fatalf("%s: stderr %q: want REDIS_URL named, no password", url, stderr.String())
		}
	}
}
