package telemetry

import (
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestTracingIsOnOnlyWithAnEndpoint(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		on   bool
	}{
		{"nothing set", nil, false},
		{"generic endpoint", map[string]string{envEndpoint: "http://collector:4317"}, true},
		{"traces endpoint", map[string]string{envTracesEndpoint: "http://collector:4317"}, true},
		{"endpoint without a scheme", map[string]string{envEndpoint: "collector:4317"}, true},
		{"blank endpoint", map[string]string{envEndpoint: "  "}, false},
		{"only a sampler", map[string]string{envTracesSampler: "always_on"}, false},
		{"SDK disabled", map[string]string{envEndpoint: "http://c:4317", envSDKDisabled: "TRUE"}, false},
		{"SDK explicitly enabled", map[string]string{envEndpoint: "http://c:4317", envSDKDisabled: "false"}, true},
		{"exporter none", map[string]string{envEndpoint: "http://c:4317", envTracesExporter: "none"}, false},
		{"exporter otlp", map[string]string{envEndpoint: "http://c:4317", envTracesExporter: "otlp"}, true},
		{"grpc protocol", map[string]string{envEndpoint: "http://c:4317", envProtocol: "grpc"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := loadSettings(env(tc.env))
			if err != nil {
				t.Fatalf("loadSettings: %v", err)
			}
			if s.enabled != tc.on {
				t.Errorf("enabled = %v, want %v", s.enabled, tc.on)
			}
		})
	}
}

func TestInvalidSettingsAreAllReported(t *testing.T) {
	_, err := loadSettings(env(map[string]string{
		envSDKDisabled:      "yes",
		envTracesExporter:   "zipkin",
		envEndpoint:         "http://collector:4317",
		envTracesProtocol:   "http/protobuf",
		envTracesSampler:    "traceidratio",
		envTracesSamplerArg: "1.5",
	}))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{envSDKDisabled, envTracesExporter, envTracesProtocol, envTracesSamplerArg} {
		if !strings.Contains(err.Error(), want+"=") {
			t.Errorf("error does not report %s:\n%v", want, err)
		}
	}

	// Checked with tracing off too, so a typo is found before it matters.
	if _, err := loadSettings(env(map[string]string{envTracesSampler: "always"})); err == nil {
		t.Error("an unknown sampler without an endpoint was accepted")
	}
	if _, err := loadSettings(env(map[string]string{envTracesEndpoint: "http://[::1"})); err == nil {
		t.Error("an unparsable endpoint was accepted")
	}
}

func TestSamplerFromTheEnvironment(t *testing.T) {
	for _, tc := range []struct {
		name, arg string
		want      sdktrace.Sampler
	}{
		// The default follows the caller's sampled flag and keeps every
		// trace the gateway starts itself.
		{"", "", sdktrace.ParentBased(sdktrace.AlwaysSample())},
		{"parentbased_always_on", "", sdktrace.ParentBased(sdktrace.AlwaysSample())},
		{"ParentBased_Always_Off", "", sdktrace.ParentBased(sdktrace.NeverSample())},
		{"parentbased_traceidratio", "0.25", sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.25))},
		{"parentbased_traceidratio", "", sdktrace.ParentBased(sdktrace.TraceIDRatioBased(1))},
		{"always_on", "", sdktrace.AlwaysSample()},
		{"always_off", "", sdktrace.NeverSample()},
		{"traceidratio", "0", sdktrace.TraceIDRatioBased(0)},
		{"traceidratio", "1", sdktrace.TraceIDRatioBased(1)},
	} {
		got, err := parseSampler(tc.name, tc.arg)
		if err != nil {
			t.Errorf("parseSampler(%q, %q): %v", tc.name, tc.arg, err)
			continue
		}
		if got.Description() != tc.want.Description() {
			t.Errorf("parseSampler(%q, %q) = %s, want %s", tc.name, tc.arg, got.Description(), tc.want.Description())
		}
	}

	for _, tc := range []struct{ name, arg string }{
		{"traceidratio", "1.5"},
		{"traceidratio", "-0.1"},
		{"traceidratio", "NaN"},
		{"parentbased_traceidratio", "half"},
		{"jaeger_remote", ""}, // in the specification, not in the Go SDK
		{"always", ""},
	} {
		if s, err := parseSampler(tc.name, tc.arg); err == nil {
			t.Errorf("parseSampler(%q, %q) = %s, want an error", tc.name, tc.arg, s.Description())
		}
	}
}
