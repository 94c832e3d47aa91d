package config

import (
	"fmt"
	"net/url"
	"strings"
)

// maxPools bounds -upstream-pools: every pool is a gRPC channel with its own
// connections and health watches, and a model label value on the upstream
// metrics, so the list must stay an operator's list, not a data set.
const maxPools = 32

// poolsValue is the -upstream-pools flag: comma-separated
// <model id>=<gRPC target URI> pairs, e.g.
// all-MiniLM-L6-v2=dns:///tandem-core-headless:50051. Parsing splits the
// pairs; Validate checks each model and target, so every mistake in the list
// is reported at once.
type poolsValue []Pool

func (p *poolsValue) String() string {
	parts := make([]string, len(*p))
	for i, pool := range *p {
		parts[i] = pool.Model + "=" + pool.Target
	}
	return strings.Join(parts, ",")
}

func (p *poolsValue) Set(s string) error {
	var out []Pool
	for _, pair := range splitList(s) {
		model, target, ok := strings.Cut(pair, "=")
		if !ok {
			return fmt.Errorf("%q: want <model id>=<gRPC target URI>", pair)
		}
		out = append(out, Pool{Model: strings.TrimSpace(model), Target: strings.TrimSpace(target)})
	}
	*p = out
	return nil
}

// validatePools reports every problem of a pool list: empty or duplicate
// model ids, and targets that are not gRPC target URIs.
func validatePools(pools []Pool) []error {
	var errs []error
	if len(pools) > maxPools {
		errs = append(errs, fmt.Errorf("upstream-pools: %d pools, at most %d", len(pools), maxPools))
	}
	seen := map[string]bool{}
	for _, p := range pools {
		switch {
		case p.Model == "":
			errs = append(errs, fmt.Errorf("upstream-pools: %q: empty model id", p.Model+"="+p.Target))
		case strings.ContainsAny(p.Model, " \t\r\n"):
			errs = append(errs, fmt.Errorf("upstream-pools: model id %q contains white space", p.Model))
		case seen[p.Model]:
			errs = append(errs, fmt.Errorf("upstream-pools: model %q is listed twice", p.Model))
		}
		seen[p.Model] = true
		if err := checkTarget(p.Target); err != nil {
			errs = append(errs, fmt.Errorf("upstream-pools: model %q: %w", p.Model, err))
		}
	}
	return errs
}

// targetSchemes are the gRPC resolvers grpc-go registers by default.
var targetSchemes = map[string]bool{"dns": true, "passthrough": true, "unix": true, "unix-abstract": true, "ipv4": true, "ipv6": true}

// checkTarget accepts what grpc.NewClient resolves with its built-in
// resolvers: a URI with one of their schemes and an endpoint
// (dns:///host:port, dns://resolver/host:port, ipv4:host:port,
// unix:///path, passthrough:///host:port). A bare host:port is refused
// rather than guessed at: grpc-go would read "core:50051" as scheme "core"
// and only fall back to DNS because no such resolver exists.
func checkTarget(target string) error {
	u, err := url.Parse(target)
	if err != nil || !targetSchemes[u.Scheme] || (u.Host == "" && strings.Trim(u.Path, "/") == "" && u.Opaque == "") {
		return fmt.Errorf("target %q: want a gRPC target URI such as dns:///tandem-core-headless:50051", target)
	}
	return nil
}
