package limits

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Client identity behind proxies, the way edge proxies do it (nginx's
// real_ip_from with real_ip_recursive, Envoy's trusted CIDRs for
// X-Forwarded-For): the TCP peer is the client unless it is a trusted proxy;
// then the forwarding header is read from the right, skipping trusted
// proxies, and the first address that is not one is the client. Each proxy
// appends the address it received the connection from, so the entries right
// of the client were written by trusted proxies and the ones left of it by
// the client itself: a client can prepend anything it likes and still not
// change what is found. Headers from a peer that is not trusted are ignored.

// ForwardingHeader names the header that carries the proxy chain.
type ForwardingHeader string

const (
	// HeaderXForwardedFor is "X-Forwarded-For: client, proxy1, proxy2", what
	// most ingress controllers and load balancers send.
	HeaderXForwardedFor ForwardingHeader = "X-Forwarded-For"
	// HeaderForwarded is RFC 7239's "Forwarded: for=client, for=proxy1".
	HeaderForwarded ForwardingHeader = "Forwarded"
)

// ParseForwardingHeader accepts the header names, case-insensitively.
func ParseForwardingHeader(s string) (ForwardingHeader, error) {
	switch {
	case strings.EqualFold(s, string(HeaderXForwardedFor)):
		return HeaderXForwardedFor, nil
	case strings.EqualFold(s, string(HeaderForwarded)):
		return HeaderForwarded, nil
	}
	return "", fmt.Errorf("%q: want %s or %s", s, HeaderXForwardedFor, HeaderForwarded)
}

// ClientIP finds the address of a request's client. The zero value (and a
// nil *ClientIP) trusts nobody: the TCP peer is the client.
type ClientIP struct {
	trusted []netip.Prefix
	header  ForwardingHeader
}

// NewClientIP returns a resolver that believes header only from peers in
// trusted.
func NewClientIP(trusted []netip.Prefix, header ForwardingHeader) *ClientIP {
	return &ClientIP{trusted: trusted, header: header}
}

// Of returns the client address of r as a string for keys and logs.
func (c *ClientIP) Of(r *http.Request) string {
	peer, err := parseHost(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr // not an IP (a test's or a unix socket's address): use as is
	}
	if c == nil || !c.isTrusted(peer) {
		return peer.String()
	}
	hops := c.hops(r.Header)
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := parseHost(hops[i])
		if err != nil {
			// Written by a trusted proxy (everything right of it was), but
			// not an address ("unknown", an obfuscated name): the nearest
			// known hop is the best identity left.
			break
		}
		client = a
		if !c.isTrusted(a) {
			break
		}
	}
	return client.String()
}

func (c *ClientIP) isTrusted(a netip.Addr) bool {
	for _, p := range c.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// hops lists the header's entries in order, over every line of it (several
// lines mean the same as one line joined with commas, RFC 9110 5.3).
func (c *ClientIP) hops(h http.Header) []string {
	var out []string
	for _, line := range h.Values(string(c.header)) {
		for part := range strings.SplitSeq(line, ",") {
			part = strings.TrimSpace(part)
			if c.header == HeaderForwarded {
				part = forwardedFor(part)
			}
			out = append(out, part)
		}
	}
	return out
}

// forwardedFor returns the for= value of one Forwarded element
// ("for=192.0.2.60;proto=http", `for="[2001:db8::17]:4711"`), or "" without
// one.
func forwardedFor(element string) string {
	for pair := range strings.SplitSeq(element, ";") {
		name, value, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if ok && strings.EqualFold(name, "for") {
			return strings.Trim(value, `"`)
		}
	}
	return ""
}

// parseHost reads "1.2.3.4", "1.2.3.4:80", "::1", "[::1]" or "[::1]:80".
// IPv4-mapped IPv6 addresses become IPv4, so one client has one key.
func parseHost(s string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return a.Unmap(), nil
	}
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		return netip.Addr{}, err
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, err
	}
	return a.Unmap(), nil
}
