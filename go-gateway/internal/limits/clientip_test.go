package limits

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	xff := NewClientIP(trusted, HeaderXForwardedFor)
	fwd := NewClientIP(trusted, HeaderForwarded)
	tests := []struct {
		name     string
		resolver *ClientIP
		peer     string
		headers  []string // values of the resolver's header, one per line
		want     string
	}{
		{"no proxy", xff, "203.0.113.7:4000", nil, "203.0.113.7"},
		// An untrusted peer's header is the client's own claim: ignored.
		{"spoofed by an untrusted peer", xff, "203.0.113.7:4000", []string{"198.51.100.1"}, "203.0.113.7"},
		{"trusted proxy", xff, "10.1.2.3:5000", []string{"198.51.100.1"}, "198.51.100.1"},
		// The client prepends a fake hop; the proxy appends the real peer.
		{"spoof behind a trusted proxy", xff, "10.1.2.3:5000", []string{"1.1.1.1, 198.51.100.1"}, "198.51.100.1"},
		{"two trusted hops", xff, "10.1.2.3:5000", []string{"1.1.1.1, 198.51.100.1, 10.9.9.9"}, "198.51.100.1"},
		{"header over several lines", xff, "10.1.2.3:5000", []string{"1.1.1.1", "198.51.100.1, 10.9.9.9"}, "198.51.100.1"},
		{"every hop trusted", xff, "10.1.2.3:5000", []string{"10.4.4.4, 10.9.9.9"}, "10.4.4.4"},
		{"trusted peer without header", xff, "10.1.2.3:5000", nil, "10.1.2.3"},
		{"garbage from the client is never reached", xff, "10.1.2.3:5000", []string{"not-an-ip, 198.51.100.1"}, "198.51.100.1"},
		{"unparseable hop stops at the nearest known", xff, "10.1.2.3:5000", []string{"198.51.100.1, unknown"}, "10.1.2.3"},
		{"hop with a port", xff, "10.1.2.3:5000", []string{"198.51.100.1:1234"}, "198.51.100.1"},
		{"ipv6 peer trusted", xff, "[::1]:5000", []string{"2001:db8::5"}, "2001:db8::5"},
		{"ipv4-mapped peer", xff, "[::ffff:203.0.113.7]:4000", nil, "203.0.113.7"},
		{"forwarded", fwd, "10.1.2.3:5000", []string{`for=1.1.1.1, for="[2001:db8::17]:4711";proto=https`}, "2001:db8::17"},
		{"forwarded spoofed by an untrusted peer", fwd, "203.0.113.7:4000", []string{"for=1.1.1.1"}, "203.0.113.7"},
		// The resolver reads only its configured header.
		{"other header ignored", fwd, "10.1.2.3:5000", nil, "10.1.2.3"},
		{"nil trusts nobody", nil, "203.0.113.7:4000", []string{"198.51.100.1"}, "203.0.113.7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.peer
			header := HeaderXForwardedFor
			if tt.resolver != nil {
				header = tt.resolver.header
			}
			for _, v := range tt.headers {
				r.Header.Add(string(header), v)
			}
			// A header the resolver does not read must change nothing.
			r.Header.Set("X-Real-Ip", "192.0.2.99")
			if got := tt.resolver.Of(r); got != tt.want {
				t.Errorf("client = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseForwardingHeader(t *testing.T) {
	for in, want := range map[string]ForwardingHeader{"x-forwarded-for": HeaderXForwardedFor, "Forwarded": HeaderForwarded} {
		if got, err := ParseForwardingHeader(in); err != nil || got != want {
			t.Errorf("ParseForwardingHeader(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseForwardingHeader("X-Real-IP"); err == nil {
		t.Error("X-Real-IP accepted")
	}
}
