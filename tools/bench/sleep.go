// sleep: Go twin of sleep.c. Main alone calls time.Sleep(1 ms) N times
// (after 20 untimed warm-up sleeps); lateness = elapsed - 1 ms.
//
// Output (stdout): sleep_late_p50_us, sleep_late_p99_us (microseconds,
// nearest-rank percentiles).
// Usage: gobench-sleep [N]   (default N = 500)
package main

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"time"
)

const (
	defaultN = 500
	warmup   = 20
	d        = time.Millisecond
)

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

// pct is the nearest-rank percentile of sorted v.
func pct(v []int64, p int) int64 {
	k := (len(v)*p + 99) / 100
	if k < 1 {
		k = 1
	}
	return v[k-1]
}

func main() {
	n := parseN(defaultN)
	late := make([]int64, n)
	for i := 0; i < warmup; i++ {
		time.Sleep(d)
	}
	for i := 0; i < n; i++ {
		t0 := time.Now()
		time.Sleep(d)
		late[i] = int64(time.Since(t0) - d)
	}
	sort.Slice(late, func(i, j int) bool { return late[i] < late[j] })
	fmt.Fprintf(os.Stderr, "sleep: N=%d, lateness min %.1f us, max %.1f us\n", n,
		float64(late[0])/1e3, float64(late[n-1])/1e3)
	fmt.Printf("sleep_late_p50_us %.1f us\n", float64(pct(late, 50))/1e3)
	fmt.Printf("sleep_late_p99_us %.1f us\n", float64(pct(late, 99))/1e3)
}
