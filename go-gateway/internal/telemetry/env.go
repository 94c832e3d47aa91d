package telemetry

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// The standard variables the gateway reads itself, through the getenv given
// to Setup. The SDK would read some of them too, but it reports a bad value
// to the OpenTelemetry error handler and carries on with a default. The
// gateway stops at start-up instead, as it does for its own settings.
const (
	envSDKDisabled      = "OTEL_SDK_DISABLED"
	envTracesExporter   = "OTEL_TRACES_EXPORTER"
	envEndpoint         = "OTEL_EXPORTER_OTLP_ENDPOINT"
	envTracesEndpoint   = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	envProtocol         = "OTEL_EXPORTER_OTLP_PROTOCOL"
	envTracesProtocol   = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	envTracesSampler    = "OTEL_TRACES_SAMPLER"
	envTracesSamplerArg = "OTEL_TRACES_SAMPLER_ARG"
)

// settings is what the environment decides about tracing.
type settings struct {
	// enabled is true when an OTLP endpoint is configured and tracing is
	// not switched off.
	enabled bool
	sampler sdktrace.Sampler
}

// loadSettings reads and validates the variables above. Every variable is
// checked even when tracing is off, so a typo shows up before the day
// someone turns tracing on; all problems are reported together.
func loadSettings(getenv func(string) string) (settings, error) {
	var errs []error
	get := func(key string) string { return strings.TrimSpace(getenv(key)) }
	invalid := func(key, value, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s=%q: %s", key, value, fmt.Sprintf(format, args...)))
	}

	// The specification accepts only a case-insensitive "true" as true and
	// says to warn about anything else and treat it as false. A typo in the
	// switch that turns tracing off must not silently leave it on, so the
	// gateway rejects such values.
	disabled := false
	switch v := get(envSDKDisabled); strings.ToLower(v) {
	case "true":
		disabled = true
	case "", "false":
	default:
		invalid(envSDKDisabled, v, "want true or false")
	}

	exporterNone := false
	switch v := get(envTracesExporter); strings.ToLower(v) {
	case "", "otlp":
	case "none":
		exporterNone = true
	default:
		invalid(envTracesExporter, v, "the gateway exports traces over OTLP only; use otlp, or none to turn tracing off")
	}

	// The per-signal variable wins over the generic one, as in the exporter.
	endpointKey, endpoint := envTracesEndpoint, get(envTracesEndpoint)
	if endpoint == "" {
		endpointKey, endpoint = envEndpoint, get(envEndpoint)
	}
	if endpoint != "" {
		// The exporter would log an unparsable URL and fall back to
		// localhost:4317, sending nothing anywhere useful.
		if _, err := url.Parse(endpoint); err != nil {
			invalid(endpointKey, endpoint, "not a URL: %v", err)
		}
	}

	protocolKey, protocol := envTracesProtocol, get(envTracesProtocol)
	if protocol == "" {
		protocolKey, protocol = envProtocol, get(envProtocol)
	}
	// The gRPC exporter ignores this variable; without the check, a
	// collector's OTLP/HTTP port would get gRPC and every export would fail.
	if protocol != "" && !strings.EqualFold(protocol, "grpc") {
		invalid(protocolKey, protocol, "the gateway exports over OTLP/gRPC only (protocol grpc, usually port 4317)")
	}

	samplerName, samplerArg := get(envTracesSampler), get(envTracesSamplerArg)
	sampler, err := parseSampler(samplerName, samplerArg)
	if err != nil {
		errs = append(errs, err)
	}

	if err := errors.Join(errs...); err != nil {
		return settings{}, err
	}
	return settings{
		enabled: endpoint != "" && !disabled && !exporterNone,
		sampler: sampler,
	}, nil
}

// parseSampler implements OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG
// for the samplers the Go SDK has. The default, parentbased_always_on,
// keeps every trace the gateway starts and follows the caller's decision
// (the sampled flag of its traceparent) for the others.
func parseSampler(name, arg string) (sdktrace.Sampler, error) {
	ratio := func() (float64, error) {
		if arg == "" {
			return 1, nil // the specification's default
		}
		v, err := strconv.ParseFloat(arg, 64)
		// Written so that NaN fails too.
		if err != nil || !(v >= 0 && v <= 1) {
			return 0, fmt.Errorf("%s=%q: want a sampling ratio between 0 and 1", envTracesSamplerArg, arg)
		}
		return v, nil
	}

	switch strings.ToLower(name) {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "parentbased_traceidratio":
		r, err := ratio()
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(r)), err
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "traceidratio":
		r, err := ratio()
		return sdktrace.TraceIDRatioBased(r), err
	default:
		return nil, fmt.Errorf("%s=%q: unsupported; use parentbased_always_on (the default), parentbased_always_off, "+
			"parentbased_traceidratio, always_on, always_off or traceidratio", envTracesSampler, name)
	}
}
