// Command apirelay lets the host reach the API server, which runs inside the
// cluster's network namespace. That namespace has no link to the outside on
// purpose: nothing in the cluster can send a packet anywhere but to itself.
// apirelay listens on a loopback address of the host and, for every
// connection, dials the target from inside the namespace (the socket is made
// there; its traffic then stays there) and copies bytes both ways. TLS is end
// to end between the client and the API server; apirelay never sees inside.
//
//	apirelay -listen 127.0.0.1:16443 -netns /run/netns/tandem-cluster -target 127.0.0.1:6443
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:16443", "host address to listen on (loopback only)")
	netns := flag.String("netns", "", "path of the network namespace to dial from (required)")
	target := flag.String("target", "127.0.0.1:6443", "address to dial inside the namespace")
	flag.Parse()
	if err := run(*listen, *netns, *target); err != nil {
		fmt.Fprintf(os.Stderr, "apirelay: %v\n", err)
		os.Exit(1)
	}
}

func run(listen, netns, target string) error {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-listen %s: only loopback addresses are allowed", listen)
	}
	if netns == "" {
		return errors.New("-netns is required")
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); ln.Close() }()
	log.Printf("relaying %s -> %s in %s", ln.Addr(), target, netns)

	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			relay(ctx, conn, netns, target)
		}()
	}
}

func relay(ctx context.Context, client net.Conn, netns, target string) {
	defer client.Close()
	upstream, err := dialIn(netns, target)
	if err != nil {
		log.Printf("dial %s in %s: %v", target, netns, err)
		return
	}
	defer upstream.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tcp, ok := dst.(*net.TCPConn); ok {
			_ = tcp.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(upstream, client)
	go pipe(client, upstream)
	select {
	case <-done:
		<-done
	case <-ctx.Done():
	}
}

// dialIn creates the socket inside the namespace at nsPath: the calling OS
// thread switches into it for the socket and connect calls, then back.
func dialIn(nsPath, address string) (net.Conn, error) {
	runtime.LockOSThread()
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer self.Close()
	target, err := os.Open(nsPath)
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer target.Close()
	if err := setns(target); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("setns %s: %w", nsPath, err)
	}
	conn, dialErr := net.DialTimeout("tcp", address, 10*time.Second)
	if err := setns(self); err != nil {
		// The thread stays locked, so the runtime discards it with this
		// goroutine instead of reusing a thread in the wrong namespace.
		if conn != nil {
			conn.Close()
		}
		return nil, fmt.Errorf("setns back: %w", err)
	}
	runtime.UnlockOSThread()
	return conn, dialErr
}

func setns(f *os.File) error { return unix.Setns(int(f.Fd()), unix.CLONE_NEWNET) }
