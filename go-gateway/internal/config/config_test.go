package config

import (
	"errors"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestDefaultsAreValid(t *testing.T) {
	cfg, err := Load(nil, env(nil))
	if err != nil {
		t.Fatalf("Load with no settings: %v", err)
	}
	if !reflect.DeepEqual(cfg, Default()) {
		t.Errorf("Load() = %+v, want Default()", cfg)
	}
	if cfg.HTTP.ListenAddr != "127.0.0.1:8080" || cfg.Admin.ListenAddr != "127.0.0.1:9090" || cfg.Upstream.Target != DefaultUpstreamTarget {
		t.Errorf("unexpected defaults: %+v", cfg)
	}
}

func TestEnvironmentOverridesDefaultsAndFlagsOverrideEnvironment(t *testing.T) {
	vars := map[string]string{
		"TANDEM_GATEWAY_LISTEN_ADDR":     "0.0.0.0:8000",
		"TANDEM_GATEWAY_REQUEST_TIMEOUT": "20s",
		"TANDEM_GATEWAY_MAX_INPUTS":      "64",
		"TANDEM_GATEWAY_LOG_LEVEL":       "debug",
		"TANDEM_GATEWAY_API_KEYS":        "k1, k2,,",
		"TANDEM_GATEWAY_RATE_LIMIT_RPS":  "2.5",
	}
	cfg, err := Load([]string{"-listen-addr", "127.0.0.1:0", "-max-inputs=32"}, env(vars))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.ListenAddr != "127.0.0.1:0" || cfg.Limits.MaxInputs != 32 {
		t.Errorf("flags did not win: %+v", cfg)
	}
	if cfg.HTTP.RequestTimeout != 20*time.Second || cfg.LogLevel != slog.LevelDebug || cfg.Limits.RateLimitPerSecond != 2.5 {
		t.Errorf("environment not applied: %+v", cfg)
	}
	if !reflect.DeepEqual(cfg.Auth.APIKeys, []string{"k1", "k2"}) {
		t.Errorf("api keys = %q", cfg.Auth.APIKeys)
	}
}

func TestUpstreamAddressesReplaceTheDefaultTarget(t *testing.T) {
	cfg, err := Load(nil, env(map[string]string{"TANDEM_GATEWAY_UPSTREAM_ADDRESSES": "10.0.0.1:50051,10.0.0.2:50051"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Upstream.Target != "" || len(cfg.Upstream.Addresses) != 2 {
		t.Errorf("upstream = %+v", cfg.Upstream)
	}

	_, err = Load([]string{"-upstream-target", "dns:///core:50051", "-upstream-addresses", "10.0.0.1:50051"}, env(nil))
	if err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("both target and addresses: err = %v", err)
	}
}

func TestInvalidSettingsAreAllReported(t *testing.T) {
	args := []string{
		"-listen-addr", "nonsense",
		"-request-timeout", "40s", // longer than the write timeout and the shutdown timeout
		"-upstream-keepalive-time", "5s",
		"-upstream-max-attempts", "9",
		"-upstream-dns-min-interval", "1ms",
		"-max-inputs", "0",
	}
	_, err := Load(args, env(nil))
	if err == nil {
		t.Fatal("invalid configuration accepted")
	}
	for _, want := range []string{"listen-addr", "http-write-timeout", "shutdown-timeout", "too_many_pings", "upstream-max-attempts", "upstream-dns-min-interval", "max-inputs"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
}

func TestUnparsableValuesNameTheirSource(t *testing.T) {
	_, err := Load(nil, env(map[string]string{"TANDEM_GATEWAY_DRAIN_DELAY": "soon"}))
	if err == nil || !strings.Contains(err.Error(), "TANDEM_GATEWAY_DRAIN_DELAY") {
		t.Errorf("err = %v, want it to name the variable", err)
	}
	if _, err := Load([]string{"-max-body-bytes", "lots"}, env(nil)); err == nil {
		t.Error("unparsable flag accepted")
	}
	if _, err := Load([]string{"stray"}, env(nil)); err == nil {
		t.Error("positional argument accepted")
	}
}

func TestHelp(t *testing.T) {
	if _, err := Load([]string{"-help"}, env(nil)); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("err = %v, want flag.ErrHelp", err)
	}
	var b strings.Builder
	WriteUsage(&b)
	for _, s := range Settings() {
		if !strings.Contains(b.String(), s.Env) {
			t.Errorf("usage does not list %s", s.Env)
		}
	}
}

// The documentation must list every setting; this keeps it from drifting
// when a setting is added.
func TestEverySettingIsDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "gateway.md"))
	if err != nil {
		t.Fatalf("read docs/gateway.md: %v", err)
	}
	for _, s := range Settings() {
		if !strings.Contains(string(doc), s.Env) {
			t.Errorf("docs/gateway.md does not document %s", s.Env)
		}
		if s.Flag != "" && !strings.Contains(string(doc), "-"+s.Flag) {
			t.Errorf("docs/gateway.md does not document flag -%s", s.Flag)
		}
	}
}
