package httpapi

import (
	"encoding/base64"
	"encoding/json"

	"github.com/tandem-inference/tandem/go-gateway/internal/upstream"
)

// The response shapes of the OpenAI API that the gateway implements. Request
// decoding lives in decode.go, because it is hand-written for precise errors.

// Values of the "encoding_format" request field.
const (
	encodingFloat  = "float"
	encodingBase64 = "base64"
)

type embeddingsResponse struct {
	Object string            `json:"object"` // always "list"
	Data   []embeddingObject `json:"data"`
	Model  string            `json:"model"`
	Usage  usage             `json:"usage"`
}

type embeddingObject struct {
	Object    string          `json:"object"` // always "embedding"
	Index     int             `json:"index"`
	Embedding embeddingVector `json:"embedding"`
	// Truncated is a Tandem extension: present (true) only when the input
	// was longer than the model's context and only its start was embedded.
	Truncated bool `json:"truncated,omitempty"`
}

type usage struct {
	PromptTokens int `json:"prompt_tokens"`
	TotalTokens  int `json:"total_tokens"`
}

// embeddingVector is a vector as OpenAI encodes it: a JSON array of numbers,
// or with encoding_format "base64" a string holding the little-endian
// float32 bytes (what the official clients request by default, as it is
// about four times smaller than decimal text).
type embeddingVector struct {
	values []float32
	base64 bool
}

// MarshalJSON is the reference encoding; the response itself is written by
// appendJSON (encode.go), which encode_test.go checks against this.
func (v embeddingVector) MarshalJSON() ([]byte, error) {
	if v.base64 {
		return json.Marshal(encodeFloat32Base64(v.values))
	}
	// encoding/json formats float32 with the shortest text that reads back
	// as the same float32, so no precision is lost.
	return json.Marshal(v.values)
}

// encodeFloat32Base64 encodes values as base64 of their little-endian
// IEEE 754 float32 bytes.
func encodeFloat32Base64(values []float32) string {
	return base64.StdEncoding.EncodeToString(float32Bytes(values))
}

// modelObject is OpenAI's model object, plus what an embeddings client
// needs to know about the model (Tandem's own fields, after OpenAI's four).
type modelObject struct {
	ID      string `json:"id"`
	Object  string `json:"object"` // always "model"
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
	// Aliases are the pool's other names, as its cores report them.
	Aliases []string `json:"aliases"`
	// Dimension, MaxTokens and Precision are the core's; MaxInputs and
	// MaxTextBytes are the limits that apply (the stricter of the gateway's
	// and the core's). All are 0 or empty when the pool cannot be asked.
	Dimension    int    `json:"dimension"`
	MaxTokens    int    `json:"max_tokens"`
	MaxInputs    int    `json:"max_inputs"`
	MaxTextBytes int    `json:"max_text_bytes"`
	Precision    string `json:"precision"`
	// Ready is whether a core of the pool can serve now: the last readiness
	// check found one SERVING, and the pool has described its model.
	Ready bool `json:"ready"`

	info upstream.ModelInfo // what the core reported, for routing checks
}

type modelList struct {
	Object string        `json:"object"` // always "list"
	Data   []modelObject `json:"data"`
}

func newModelObject(id string) modelObject {
	// The core does not report a creation time; 0 is a valid Unix time and
	// keeps the field's type what clients expect.
	return modelObject{ID: id, Object: "model", Created: 0, OwnedBy: "tandem", Aliases: []string{}}
}

// errorResponse is OpenAI's error shape. Param and code are null when
// there is nothing to say.
type errorResponse struct {
	Error errorBody `json:"error"`
}

type errorBody struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}
