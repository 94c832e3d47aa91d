// Command coredns is the cluster's DNS server: CoreDNS with only the plugins
// the cluster's Corefile uses (config/coredns.yaml), instead of the upstream
// binary's ~60. Upstream's main imports core/plugin, which links every plugin
// and its cloud SDKs; importing the few we need keeps the build small.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/ready"
)

func init() {
	// The order plugins run in, as in upstream's plugin.cfg (core/dnsserver/zdirectives.go).
	dnsserver.Directives = []string{"ready", "health", "errors", "cache", "kubernetes"}
}

func main() { coremain.Run() }
