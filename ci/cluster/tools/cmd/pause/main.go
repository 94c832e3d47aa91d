// Command pause is every pod's sandbox process. It holds the pod's namespaces
// open, reaps the zombies it inherits (it is PID 1 when a pod shares its PID
// namespace) and exits 0 on SIGINT or SIGTERM. The image is this one static
// binary FROM scratch (scripts/build.sh), so no registry is needed.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 16)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range signals {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var status syscall.WaitStatus
			if pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil); pid <= 0 || err != nil {
				break
			}
		}
	}
}
