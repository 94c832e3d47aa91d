package logging

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/tandem-inference/tandem/go-gateway/internal/requestid"
)

func TestRecordsCarryTheRequestIDFromTheContext(t *testing.T) {
	var buf bytes.Buffer
	logger := New(&buf, slog.LevelInfo).With("component", "test")

	logger.InfoContext(requestid.NewContext(t.Context(), "req-7"), "hello")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("log line is not JSON: %v: %s", err, buf.String())
	}
	if line["request_id"] != "req-7" || line["component"] != "test" || line["msg"] != "hello" {
		t.Errorf("line = %v", line)
	}

	buf.Reset()
	logger.InfoContext(t.Context(), "no id")
	if bytes.Contains(buf.Bytes(), []byte("request_id")) {
		t.Errorf("line without a request has a request_id: %s", buf.String())
	}
}
