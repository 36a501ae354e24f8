// stw: Go twin of stw.c. One hog goroutine per P (a loop with no calls);
// main times runtime.ReadMemStats (a stop-the-world around a short read)
// N times, 1 ms apart.
//
// Output (stdout): stw_call_p50_us, stw_call_p99_us (microseconds; the
// whole ReadMemStats call: Go has no way to time the stop alone).
// Usage: gobench-stw [N]   (default N = 200)
package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"sync/atomic"
	"time"
)

var stop int32
var spins uint64

//go:noinline
func hog() {
	n := uint64(0)
	for atomic.LoadInt32(&stop) == 0 {
		n++
	}
	spins = n
}

func pct(v []int64, p int) int64 {
	k := (len(v)*p + 99) / 100
	if k < 1 {
		k = 1
	}
	return v[k-1]
}

func main() {
	n := 200
	if len(os.Args) > 1 {
		v, err := strconv.Atoi(os.Args[1])
		if err != nil || v <= 0 || v > 100000 {
			fmt.Fprintf(os.Stderr, "usage: %s [N in 1..100000]\n", os.Args[0])
			os.Exit(2)
		}
		n = v
	}
	procs := runtime.GOMAXPROCS(0)
	for i := 0; i < procs; i++ {
		go hog()
	}
	time.Sleep(5 * time.Millisecond)
	var ms runtime.MemStats
	d := make([]int64, n)
	for i := 0; i < n; i++ {
		t0 := time.Now()
		runtime.ReadMemStats(&ms)
		d[i] = int64(time.Since(t0))
		time.Sleep(time.Millisecond)
	}
	atomic.StoreInt32(&stop, 1)
	sort.Slice(d, func(a, b int) bool { return d[a] < d[b] })
	fmt.Printf("stw_call_p50_us %.1f us\n", float64(pct(d, 50))/1e3)
	fmt.Printf("stw_call_p99_us %.1f us\n", float64(pct(d, 99))/1e3)
}
