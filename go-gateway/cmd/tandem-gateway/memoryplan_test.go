package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"testing"

	"github.com/tandem-inference/tandem/go-gateway/internal/memplan"
)

func TestMemoryPlanPrintsTheFormula(t *testing.T) {
	env := map[string]string{"TANDEM_GATEWAY_MAX_BODY_BYTES": "2097152"}
	var out bytes.Buffer
	err := run(context.Background(), []string{"memory-plan", "-max-in-flight", "16", "-dimension", "384"},
		func(k string) string { return env[k] }, &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var got memplan.Plan
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("not a plan: %v\n%s", err, out.String())
	}
	want, err := memplan.Compute(memplan.Inputs{
		MaxInFlight: 16, MaxBodyBytes: 2 << 20, MaxInputs: 256, MaxTextBytes: 8192, Dimension: 384, GoMemRatio: 0.9,
	})
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("printed %+v\nwant    %+v", got, want)
	}
}

func TestMemoryPlanRefusesNoInFlightCap(t *testing.T) {
	err := run(context.Background(), []string{"memory-plan", "-max-in-flight", "0"},
		func(string) string { return "" }, io.Discard, io.Discard)
	if !errors.Is(err, memplan.ErrUnbounded) {
		t.Errorf("err = %v, want ErrUnbounded", err)
	}
}
