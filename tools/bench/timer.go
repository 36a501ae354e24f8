// timer: Go twin of timer.c. First VmRSS (from /proc/self/status, same
// parsing as timer.c) before and after creating NBYTES time.AfterFunc timers
// with a 1 hour deadline (the slice that keeps them is allocated and touched
// beforehand), then all are stopped. Then N create+stop pairs
// (time.AfterFunc(time.Hour, f).Stop()) after N/10 untimed warm-up pairs.
//
// Output (stdout): timer_bytes (bytes per pending timer),
// timer_create_stop_ns (ns per pair).
// Usage: gobench-timer [N [NBYTES]]   (defaults 1000000 and 1000000)
package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

const defaultN = 1000000

func never() {}

// rssBytes returns VmRSS in bytes: the whole of /proc/self/status, the
// "VmRSS:" line (kB).
func rssBytes() int64 {
	buf, err := os.ReadFile("/proc/self/status")
	if err != nil {
		fmt.Fprintf(os.Stderr, "timer: %v\n", err)
		os.Exit(1)
	}
	key := []byte("\nVmRSS:")
	i := bytes.Index(buf, key)
	if i < 0 {
		fmt.Fprintln(os.Stderr, "timer: no VmRSS in /proc/self/status")
		os.Exit(1)
	}
	rest := buf[i+len(key):]
	if j := bytes.IndexByte(rest, '\n'); j >= 0 {
		rest = rest[:j]
	}
	f := bytes.Fields(rest)
	if len(f) == 0 {
		fmt.Fprintln(os.Stderr, "timer: bad VmRSS line")
		os.Exit(1)
	}
	kb, err := strconv.ParseInt(string(f[0]), 10, 64)
	if err != nil {
		fmt.Fprintf(os.Stderr, "timer: bad VmRSS: %v\n", err)
		os.Exit(1)
	}
	return kb * 1024
}

func parseArg(i, def int) int {
	if len(os.Args) <= i {
		return def
	}
	v, err := strconv.Atoi(os.Args[i])
	if err != nil || v <= 0 || v > 100000000 {
		fmt.Fprintf(os.Stderr, "usage: %s [N [NBYTES]], each in 1..100000000\n", os.Args[0])
		os.Exit(2)
	}
	return v
}

func main() {
	n := parseArg(1, defaultN)
	nb := parseArg(2, defaultN)

	// pending timers: bytes each
	ts := make([]*time.Timer, nb)
	for i := range ts {
		ts[i] = nil // touch the slice before the first reading
	}
	rss0 := rssBytes()
	for i := range ts {
		ts[i] = time.AfterFunc(time.Hour, never)
	}
	rss1 := rssBytes()
	notStopped := 0
	for _, t := range ts {
		if !t.Stop() {
			notStopped++
		}
	}
	ts = nil
	if notStopped != 0 {
		fmt.Fprintf(os.Stderr, "timer: %d timers were not pending\n", notStopped)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "timer: VmRSS %d KiB -> %d KiB with %d pending timers\n",
		rss0/1024, rss1/1024, nb)

	// create + stop
	for i := 0; i < n/10; i++ {
		time.AfterFunc(time.Hour, never).Stop()
	}
	t0 := time.Now()
	for i := 0; i < n; i++ {
		time.AfterFunc(time.Hour, never).Stop()
	}
	t1 := time.Now()

	fmt.Printf("timer_bytes %.0f bytes\n", float64(rss1-rss0)/float64(nb))
	fmt.Printf("timer_create_stop_ns %.1f ns/op\n", float64(t1.Sub(t0).Nanoseconds())/float64(n))
}
