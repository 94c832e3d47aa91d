package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// awkwardFloats are the values where float formatting goes wrong first:
// zero and negative zero, the exponent thresholds of encoding/json (1e-6 and
// 1e21) on both sides, subnormals, the extremes, and exact powers of two.
var awkwardFloats = []float32{
	0, float32(math.Copysign(0, -1)), 1, -1, 0.1, -0.1, 1e-6, -1e-6,
	math.Nextafter32(1e-6, 0), math.Nextafter32(1e-6, 1), 1e-7, 1.5e-7, 9.999999e-7,
	1e20, 1e21, math.Nextafter32(1e21, 0), -1e21, 1e-45, -1e-45, 1.17549435e-38,
	math.MaxFloat32, -math.MaxFloat32, math.SmallestNonzeroFloat32, 0.5, 0.25, 1024, 3.4e-12,
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]float32, 4096)
	for i := range random {
		switch i % 3 {
		case 0: // a unit vector's elements
			random[i] = float32(rng.NormFloat64() * 0.05)
		case 1: // any bit pattern that is a finite float
			for {
				f := math.Float32frombits(rng.Uint32())
				if !math.IsNaN(float64(f)) && !math.IsInf(float64(f), 0) {
					random[i] = f
					break
				}
			}
		default: // raw, unnormalised vectors
			random[i] = float32(rng.NormFloat64() * 3)
		}
	}
	for _, b64 := range []bool{false, true} {
		resp := embeddingsResponse{
			Object: "list",
			Data: []embeddingObject{
				{Object: "embedding", Index: 0, Embedding: embeddingVector{values: awkwardFloats, base64: b64}},
				{Object: "embedding", Index: 1, Embedding: embeddingVector{values: random, base64: b64}, Truncated: true},
				{Object: "embedding", Index: 2, Embedding: embeddingVector{values: []float32{}, base64: b64}},
			},
			// A name that encoding/json escapes (HTML characters, a quote, a control byte).
			Model: "m<od>&el\"\x01é",
			Usage: usage{PromptTokens: 7, TotalTokens: 9},
		}
		want, err := json.Marshal(resp)
		if err != nil {
			t.Fatal(err)
		}
		got, err := resp.appendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			i := 0
			for i < min(len(got), len(want)) && got[i] == want[i] {
				i++
			}
			t.Fatalf("base64=%v: appendJSON differs from encoding/json at byte %d:\n got %q\nwant %q",
				b64, i, got[max(0, i-40):min(len(got), i+40)], want[max(0, i-40):min(len(want), i+40)])
		}
	}
}

func TestAppendJSONRefusesNonFinite(t *testing.T) {
	for _, f := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
		resp := embeddingsResponse{Object: "list", Data: []embeddingObject{
			{Object: "embedding", Embedding: embeddingVector{values: []float32{0.5, f}}},
		}}
		_, err := resp.appendJSON(nil)
		if _, ok := errors.AsType[*json.UnsupportedValueError](err); !ok {
			t.Errorf("%v: err = %v, want *json.UnsupportedValueError", f, err)
		}
	}
}
