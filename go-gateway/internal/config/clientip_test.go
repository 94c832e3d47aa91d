package config

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestTrustedProxies(t *testing.T) {
	env := func(vars map[string]string) func(string) string { return func(k string) string { return vars[k] } }

	cfg, err := Load(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	if !slices.Equal(cfg.Limits.TrustedProxies, loopback) {
		t.Errorf("default trusted proxies = %v, want loopback only", cfg.Limits.TrustedProxies)
	}

	cfg, err = Load(nil, env(map[string]string{"TANDEM_GATEWAY_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.7,fd00::/8"}))
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32"), netip.MustParsePrefix("fd00::/8")}
	if !slices.Equal(cfg.Limits.TrustedProxies, want) {
		t.Errorf("trusted proxies = %v, want %v", cfg.Limits.TrustedProxies, want)
	}

	cfg, err = Load([]string{"-trusted-proxies", "none"}, env(nil))
	if err != nil || len(cfg.Limits.TrustedProxies) != 0 {
		t.Errorf(`"none" = %v, %v; want no trusted proxy`, cfg.Limits.TrustedProxies, err)
	}

	for _, bad := range []string{"10.0.0.0/33", "ingress", "10.0.0.1:80"} {
		if _, err := Load([]string{"-trusted-proxies", bad}, env(nil)); err == nil || !strings.Contains(err.Error(), "trusted-proxies") {
			t.Errorf("trusted-proxies %q: err = %v, want a trusted-proxies error", bad, err)
		}
	}
	if _, err := Load([]string{"-client-ip-header", "X-Real-IP"}, env(nil)); err == nil {
		t.Error("client-ip-header X-Real-IP accepted")
	}
	if _, err := Load([]string{"-api-keys-reload-interval", "5m"}, env(nil)); err == nil {
		t.Error("a reload interval over a minute accepted: a removed key would work for too long")
	}
}
