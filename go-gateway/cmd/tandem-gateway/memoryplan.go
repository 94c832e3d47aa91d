package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"github.com/tandem-inference/tandem/go-gateway/internal/config"
	"github.com/tandem-inference/tandem/go-gateway/internal/memplan"
)

// memoryPlanCommand is the subcommand that prints the memory plan.
const memoryPlanCommand = "memory-plan"

// printMemoryPlan serves `tandem-gateway memory-plan [flags]`: it prints the
// gateway's memory plan (internal/memplan) as JSON, for the settings the
// gateway would run with (defaults and TANDEM_GATEWAY_* variables),
// overridden by its flags. It is to the gateway what `tandem worker-math` is
// to the core; tests/chart/test_gateway_memory.py checks the chart's
// numbers against it.
func printMemoryPlan(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := config.Load(nil, getenv)
	if err != nil {
		return err
	}
	in := memplan.Inputs{
		MaxInFlight:  cfg.Limits.MaxInFlight,
		MaxBodyBytes: cfg.Limits.MaxBodyBytes,
		MaxInputs:    cfg.Limits.MaxInputs,
		MaxTextBytes: cfg.Limits.MaxTextBytes,
		// The widest answer the gateway accepts from a core.
		Dimension:  cfg.Upstream.MaxEmbeddingDimension,
		GoMemRatio: memplan.DefaultGoMemLimitRatio,
	}
	fs := flag.NewFlagSet("tandem-gateway "+memoryPlanCommand, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&in.MaxInFlight, "max-in-flight", in.MaxInFlight, "most concurrent API requests")
	fs.Int64Var(&in.MaxBodyBytes, "max-body-bytes", in.MaxBodyBytes, "largest request body")
	fs.IntVar(&in.MaxInputs, "max-inputs", in.MaxInputs, "most texts per request")
	fs.IntVar(&in.MaxTextBytes, "max-text-bytes", in.MaxTextBytes, "longest text, in UTF-8 bytes")
	fs.IntVar(&in.Dimension, "dimension", in.Dimension, "largest embedding dimension accepted from a core (upstream-max-dimension)")
	fs.Float64Var(&in.GoMemRatio, "gomemlimit-ratio", in.GoMemRatio, "GOMEMLIMIT's share of the memory limit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q", memoryPlanCommand, fs.Arg(0))
	}
	plan, err := memplan.Compute(in)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(plan)
}
