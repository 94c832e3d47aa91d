package requestid

import (
	"strings"
	"testing"
)

func TestValid(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"abc-123", true},
		{"0f8fad5b-d9cb-469f-a165-70867728950e", true},
		{"trace:span.1_x", true},
		{strings.Repeat("a", 128), true},
		{strings.Repeat("a", 129), false},
		{"", false},
		{"has space", false},
		{"quote\"", false},
		{"new\nline", false},
		{"ünïcode", false},
	}
	for _, tt := range tests {
		if got := Valid(tt.id); got != tt.want {
			t.Errorf("Valid(%q) = %v, want %v", tt.id, got, tt.want)
		}
	}
}

func TestNewIsValidAndUnique(t *testing.T) {
	a, b := New(), New()
	if !Valid(a) || !Valid(b) || a == b {
		t.Errorf("New() = %q, %q: want two different valid ids", a, b)
	}
}

func TestContextRoundTrip(t *testing.T) {
	if got := FromContext(t.Context()); got != "" {
		t.Errorf("empty context gave %q", got)
	}
	if got := FromContext(NewContext(t.Context(), "x")); got != "x" {
		t.Errorf("got %q, want x", got)
	}
}
