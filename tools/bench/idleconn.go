// idleconn: Go twin of idleconn.c. Memory per idle TCP connection on the
// server side: net.Listen on 127.0.0.1 (free port), a goroutine per accepted
// connection that makes a 4 KiB read buffer and blocks in Read on it until
// EOF. The client ends live in a helper process, this binary re-executed as
// `gobench-idleconn --client PORT N`, which opens N connections, only holds
// them, prints "ready" and exits when its stdin reaches EOF (same protocol as
// the C helper; see idleconn.c for why a helper).
//
// Order: raise RLIMIT_NOFILE's soft limit to the hard one (fail if below
// N + 256); listen; warm up (64 connections dialed in-process, each served
// once, all closed); VmRSS (parsed from /proc/self/status as bench.h does);
// start the helper; wait for "ready", N accepted and N about to read, then
// 200 ms; VmRSS again; close the helper's stdin, wait for it and the servers.
//
// Output (stdout): idleconn_bytes_per_conn, (VmRSS after - before) / N.
// Usage: gobench-idleconn [N]   (default N = 10000 connections)
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	defaultN  = 10000
	readBuf   = 4096
	warmConns = 64
	fdSlack   = 256
	waitTime  = 60 * time.Second
)

var accepted, reading, errors int64

func rssBytes() int64 {
	buf, err := os.ReadFile("/proc/self/status")
	if err != nil {
		fmt.Fprintf(os.Stderr, "idleconn: %v\n", err)
		os.Exit(1)
	}
	key := []byte("\nVmRSS:")
	i := bytes.Index(buf, key)
	if i < 0 {
		fmt.Fprintln(os.Stderr, "idleconn: no VmRSS in /proc/self/status")
		os.Exit(1)
	}
	rest := buf[i+len(key):]
	if j := bytes.IndexByte(rest, '\n'); j >= 0 {
		rest = rest[:j]
	}
	f := bytes.Fields(rest)
	if len(f) == 0 {
		fmt.Fprintln(os.Stderr, "idleconn: bad VmRSS line")
		os.Exit(1)
	}
	kb, err := strconv.ParseInt(string(f[0]), 10, 64)
	if err != nil {
		fmt.Fprintf(os.Stderr, "idleconn: bad VmRSS: %v\n", err)
		os.Exit(1)
	}
	return kb * 1024
}

// raiseNofile sets the soft RLIMIT_NOFILE to the hard limit and returns it.
func raiseNofile(who string) int64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		fmt.Fprintf(os.Stderr, "%s: getrlimit(RLIMIT_NOFILE): %v\n", who, err)
		os.Exit(1)
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			fmt.Fprintf(os.Stderr, "%s: setrlimit(RLIMIT_NOFILE, %d): %v\n", who, rl.Max, err)
			os.Exit(1)
		}
	}
	if rl.Cur > 1<<62 {
		return 1 << 62
	}
	return int64(rl.Cur)
}

// clientMain: the helper. Holds N connections until stdin reaches EOF.
func clientMain() {
	if len(os.Args) != 4 {
		fmt.Fprintf(os.Stderr, "usage: %s --client PORT N\n", os.Args[0])
		os.Exit(2)
	}
	n, _ := strconv.Atoi(os.Args[3])
	if lim := raiseNofile("idleconn client"); lim < int64(n+fdSlack) {
		fmt.Fprintf(os.Stderr, "idleconn client: RLIMIT_NOFILE %d < %d\n", lim, n+fdSlack)
		os.Exit(1)
	}
	addr := "127.0.0.1:" + os.Args[2]
	conns := make([]net.Conn, 0, n)
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			fmt.Fprintf(os.Stderr, "idleconn client: connection %d: %v\n", i, err)
			os.Exit(1)
		}
		conns = append(conns, c)
	}
	os.Stdout.WriteString("ready\n")
	io.Copy(io.Discard, os.Stdin)
	runtime.KeepAlive(conns)
	os.Exit(0) // exiting closes every connection
}

func serve(c net.Conn, wg *sync.WaitGroup) {
	defer wg.Done()
	defer c.Close()
	buf := make([]byte, readBuf)
	atomic.AddInt64(&reading, 1)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil { // the warm-up's one message
				return
			}
		}
		if err != nil {
			if err != io.EOF && !isReset(err) {
				fmt.Fprintf(os.Stderr, "idleconn: server read: %v\n", err)
				atomic.AddInt64(&errors, 1)
			}
			return
		}
	}
}

func isReset(err error) bool {
	if oe, ok := err.(*net.OpError); ok {
		if se, ok := oe.Err.(*os.SyscallError); ok {
			return se.Err == syscall.ECONNRESET
		}
	}
	return false
}

func acceptor(ln net.Listener, servers *sync.WaitGroup) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return // main closed the listener
		}
		servers.Add(1)
		atomic.AddInt64(&accepted, 1)
		go serve(c, servers)
	}
}

func parseN(def int) int {
	if len(os.Args) < 2 {
		return def
	}
	v, err := strconv.Atoi(os.Args[1])
	if err != nil || v <= 0 || v > 1000000 {
		fmt.Fprintf(os.Stderr, "usage: %s [N in 1..1000000]\n", os.Args[0])
		os.Exit(2)
	}
	return v
}

func main() {
	if len(os.Args) >= 2 && os.Args[1] == "--client" {
		clientMain()
	}
	n := parseN(defaultN)
	lim := raiseNofile("idleconn")
	if lim < int64(n+fdSlack) {
		fmt.Fprintf(os.Stderr, "idleconn: RLIMIT_NOFILE hard limit is %d; %d connections need "+
			"at least %d descriptors (N + %d). Raise it (as root: ulimit -Hn %d) or pass a "+
			"smaller N.\n", lim, n, n+fdSlack, fdSlack, n+fdSlack)
		os.Exit(1)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintf(os.Stderr, "idleconn: listen: %v\n", err)
		os.Exit(1)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	fmt.Fprintf(os.Stderr, "idleconn: N=%d, RLIMIT_NOFILE %d, %d processors\n", n, lim,
		runtime.GOMAXPROCS(0))
	var servers sync.WaitGroup
	go acceptor(ln, &servers)

	// Warm-up: WARM_CONNS connections, each echoed once, then all closed.
	warm := make([]net.Conn, warmConns)
	for i := range warm {
		c, err := net.Dial("tcp", ln.Addr().String())
		b := []byte{'w'}
		if err == nil {
			_, err = c.Write(b)
		}
		if err == nil {
			_, err = io.ReadFull(c, b)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "idleconn: warm-up connection %d failed: %v\n", i, err)
			os.Exit(1)
		}
		warm[i] = c
	}
	for _, c := range warm {
		c.Close()
	}
	servers.Wait()
	atomic.StoreInt64(&accepted, 0)
	atomic.StoreInt64(&reading, 0)

	rss0 := rssBytes()

	self, err := os.Executable()
	if err != nil {
		self = "/proc/self/exe"
	}
	cmd := exec.Command(self, "--client", strconv.Itoa(port), strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	stdin, err1 := cmd.StdinPipe()
	stdout, err2 := cmd.StdoutPipe()
	if err1 != nil || err2 != nil {
		fmt.Fprintf(os.Stderr, "idleconn: pipes: %v %v\n", err1, err2)
		os.Exit(1)
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "idleconn: spawning the client helper: %v\n", err)
		os.Exit(1)
	}

	failed := false
	t0 := time.Now()
	ready := make(chan bool, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		ready <- err == nil && line == "ready\n"
	}()
	select {
	case ok := <-ready:
		if !ok {
			fmt.Fprintln(os.Stderr, "idleconn: the client helper failed")
			failed = true
		}
	case <-time.After(waitTime):
		fmt.Fprintf(os.Stderr, "idleconn: the client helper was not ready within %.0f s\n",
			waitTime.Seconds())
		failed = true
	}
	for !failed && atomic.LoadInt64(&reading) < int64(n) {
		if time.Since(t0) > waitTime || atomic.LoadInt64(&errors) != 0 {
			fmt.Fprintf(os.Stderr, "idleconn: only %d connections accepted, %d reading, %d errors\n",
				atomic.LoadInt64(&accepted), atomic.LoadInt64(&reading), atomic.LoadInt64(&errors))
			failed = true
		}
		time.Sleep(time.Millisecond)
	}
	var rss1 int64
	if !failed {
		up := time.Since(t0)
		time.Sleep(200 * time.Millisecond) // let the last ones park
		rss1 = rssBytes()
		fmt.Fprintf(os.Stderr, "idleconn: %d connections up in %.0f ms; VmRSS %d KiB -> %d KiB, "+
			"%d goroutines\n", n, float64(up.Nanoseconds())/1e6, rss0/1024, rss1/1024,
			runtime.NumGoroutine())
	}

	stdin.Close() // the helper exits, closing its ends: every server read sees EOF
	if err := cmd.Wait(); err != nil {
		fmt.Fprintf(os.Stderr, "idleconn: the client helper failed: %v\n", err)
		failed = true
	}
	if failed {
		os.Exit(1)
	}
	servers.Wait()
	ln.Close()
	if atomic.LoadInt64(&errors) != 0 {
		os.Exit(1)
	}
	fmt.Printf("idleconn_bytes_per_conn %.0f bytes\n", float64(rss1-rss0)/float64(n))
}
