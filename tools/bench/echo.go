// echo: Go twin of echo.c. Ping-pong of a 64-byte message over 1000 loopback
// TCP connections in one process: net.Listen on 127.0.0.1 (free port), a
// goroutine per accepted connection reading into a 4 KiB buffer and writing
// back what it read until EOF; 1000 client goroutines each net.Dial
// (TCP_NODELAY is Go's default), run an untimed warm-up of R/10 round trips
// (at least 1), wait on a gate, then do R round trips (R = N / 1000, at
// least 1): write 64 bytes, read until 64 came back (checked), timing each.
// Default GOMAXPROCS.
//
// Output (stdout): echo_rtt_per_s (round trips per second, all connections),
// echo_rtt_p50_us, echo_rtt_p99_us (nearest-rank percentiles of the
// per-round-trip latency).
// Usage: gobench-echo [N]   (total round trips, default 200000; a watchdog
// fails the run after 60 s + 20 us per round trip)
package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

const (
	conns        = 1000
	msgSize      = 64
	srvBuf       = 4096
	defaultTotal = 200000
)

var errors, bad, progress, accepted int64

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "echo: "+format+"\n", args...)
	atomic.AddInt64(&errors, 1)
}

func serve(c net.Conn, wg *sync.WaitGroup) {
	defer wg.Done()
	defer c.Close()
	buf := make([]byte, srvBuf)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				fail("server write: %v", werr)
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				fail("server read: %v", err)
			}
			return
		}
	}
}

func acceptor(ln net.Listener, servers *sync.WaitGroup) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return // main closed the listener
		}
		atomic.AddInt64(&accepted, 1)
		servers.Add(1)
		go serve(c, servers)
	}
}

func roundTrip(c net.Conn, msg, in []byte) bool {
	if _, err := c.Write(msg); err != nil {
		fail("client write: %v", err)
		return false
	}
	if _, err := io.ReadFull(c, in); err != nil {
		fail("client read: %v", err)
		return false
	}
	if !bytes.Equal(in, msg) {
		atomic.AddInt64(&bad, 1)
	}
	return true
}

func parseN(def int) int {
	if len(os.Args) < 2 {
		return def
	}
	v, err := strconv.Atoi(os.Args[1])
	if err != nil || v <= 0 || v > 1000000000 {
		fmt.Fprintf(os.Stderr, "usage: %s [N in 1..1000000000]\n", os.Args[0])
		os.Exit(2)
	}
	return v
}

func main() {
	total := parseN(defaultTotal)
	rounds := total / conns
	if rounds < 1 {
		rounds = 1
	}
	warm := rounds / 10
	if warm < 1 {
		warm = 1
	}
	lat := make([]int64, conns*rounds)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintf(os.Stderr, "echo: listen: %v\n", err)
		os.Exit(1)
	}
	addr := ln.Addr().String()
	fmt.Fprintf(os.Stderr, "echo: %d connections x %d round trips of %d bytes, %d processors\n",
		conns, rounds, msgSize, runtime.GOMAXPROCS(0))

	limit := 60*time.Second + time.Duration(conns*rounds)*20*time.Microsecond
	time.AfterFunc(limit, func() {
		fmt.Fprintf(os.Stderr, "echo: watchdog: not done after %.0f s: %d connections accepted, "+
			"%d of %d timed round trips done, %d errors, %d goroutines\n",
			limit.Seconds(), atomic.LoadInt64(&accepted), atomic.LoadInt64(&progress),
			conns*rounds, atomic.LoadInt64(&errors), runtime.NumGoroutine())
		os.Exit(1)
	})
	var servers sync.WaitGroup
	go acceptor(ln, &servers)

	var dialed, done sync.WaitGroup
	gate := make(chan struct{})
	dialed.Add(conns)
	done.Add(conns)
	for i := 0; i < conns; i++ {
		go func(id int) {
			defer done.Done()
			my := lat[id*rounds : (id+1)*rounds]
			msg := make([]byte, msgSize)
			in := make([]byte, msgSize)
			for j := range msg {
				msg[j] = byte('a' + (id+j)%26)
			}
			c, err := net.Dial("tcp", addr)
			if err != nil {
				fail("dial: %v", err)
				dialed.Done()
				return
			}
			defer c.Close()
			ok := true
			for r := 0; r < warm && ok; r++ {
				ok = roundTrip(c, msg, in)
			}
			dialed.Done()
			<-gate
			for r := 0; r < rounds && ok; r++ {
				t0 := time.Now()
				ok = roundTrip(c, msg, in)
				my[r] = time.Since(t0).Nanoseconds()
				atomic.AddInt64(&progress, 1)
			}
		}(i)
	}
	dialed.Wait()
	t0 := time.Now()
	close(gate)
	done.Wait()
	elapsed := time.Since(t0)
	ln.Close()
	servers.Wait()

	if errors != 0 || bad != 0 {
		fmt.Fprintf(os.Stderr, "echo: %d errors, %d messages came back wrong\n", errors, bad)
		os.Exit(1)
	}
	n := len(lat)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p int) int64 {
		k := (n*p + 99) / 100
		if k < 1 {
			k = 1
		}
		return lat[k-1]
	}
	fmt.Fprintf(os.Stderr, "echo: latency us: p50 %.1f p90 %.1f p99 %.1f p99.9 %.1f max %.1f\n",
		float64(pct(50))/1e3, float64(pct(90))/1e3, float64(pct(99))/1e3,
		float64(lat[n-1-n/1000])/1e3, float64(lat[n-1])/1e3)
	fmt.Printf("echo_rtt_per_s %.0f ops/s\n", float64(n)/elapsed.Seconds())
	fmt.Printf("echo_rtt_p50_us %.1f us\n", float64(pct(50))/1e3)
	fmt.Printf("echo_rtt_p99_us %.1f us\n", float64(pct(99))/1e3)
}
