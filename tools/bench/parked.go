// parked: Go twin of parked.c. N goroutines each call started.Done and then
// block in gate.Wait (gate holds a count of 1); main measures VmRSS from
// /proc/self/status before spawning and once all have started, then releases
// the gate with one Done and waits for all to finish (finished.Done each).
//
// Output (stdout): parked_spawn_ns, parked_rss_per_g (bytes),
// parked_rss_kib_per_g (KiB), parked_release_ns.
// Usage: gobench-parked [N]   (default N = 1000000)
package main

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"
)

const defaultN = 1000000

var started, gate, finished sync.WaitGroup

func parkedG() {
	started.Done()
	gate.Wait()
	finished.Done()
}

// rssBytes returns VmRSS in bytes. Same method as parked.c: read the whole of
// /proc/self/status and parse the "VmRSS:" line (kB).
func rssBytes() int64 {
	buf, err := os.ReadFile("/proc/self/status")
	if err != nil {
		fmt.Fprintf(os.Stderr, "parked: %v\n", err)
		os.Exit(1)
	}
	key := []byte("\nVmRSS:")
	i := bytes.Index(buf, key)
	if i < 0 {
		fmt.Fprintln(os.Stderr, "parked: no VmRSS in /proc/self/status")
		os.Exit(1)
	}
	rest := buf[i+len(key):]
	if j := bytes.IndexByte(rest, '\n'); j >= 0 {
		rest = rest[:j]
	}
	f := bytes.Fields(rest)
	if len(f) == 0 {
		fmt.Fprintln(os.Stderr, "parked: bad VmRSS line")
		os.Exit(1)
	}
	kb, err := strconv.ParseInt(string(f[0]), 10, 64)
	if err != nil {
		fmt.Fprintf(os.Stderr, "parked: bad VmRSS: %v\n", err)
		os.Exit(1)
	}
	return kb * 1024
}

func parseN(def int) int {
	if len(os.Args) < 2 {
		return def
	}
	v, err := strconv.Atoi(os.Args[1])
	if err != nil || v <= 0 || v > 100000000 {
		fmt.Fprintf(os.Stderr, "usage: %s [N in 1..100000000]\n", os.Args[0])
		os.Exit(2)
	}
	return v
}

func main() {
	n := parseN(defaultN)
	fmt.Fprintf(os.Stderr, "parked: N=%d, %d processors\n", n, runtime.GOMAXPROCS(0))

	started.Add(n)
	finished.Add(n)
	gate.Add(1)

	rss0 := rssBytes()
	t0 := time.Now()
	for i := 0; i < n; i++ {
		go parkedG()
	}
	started.Wait()
	t1 := time.Now()
	rss1 := rssBytes()
	fmt.Fprintf(os.Stderr, "parked: VmRSS %d KiB -> %d KiB, %d goroutines\n",
		rss0/1024, rss1/1024, runtime.NumGoroutine())

	t2 := time.Now()
	gate.Done()
	finished.Wait()
	t3 := time.Now()

	perG := float64(rss1-rss0) / float64(n)
	fmt.Printf("parked_spawn_ns %.1f ns/op\n", float64(t1.Sub(t0).Nanoseconds())/float64(n))
	fmt.Printf("parked_rss_per_g %.0f bytes\n", perG)
	fmt.Printf("parked_rss_kib_per_g %.1f KiB\n", perG/1024)
	fmt.Printf("parked_release_ns %.1f ns/op\n", float64(t3.Sub(t2).Nanoseconds())/float64(n))
}
