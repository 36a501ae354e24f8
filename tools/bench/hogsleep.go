// hogsleep: Go twin of hogsleep.c. One goroutine per P spins in a loop with
// no calls; main calls time.Sleep(1 ms) N times (after 20 untimed warm-up
// sleeps); lateness = elapsed - 1 ms.
//
// Output (stdout): hogsleep_late_p50_us, hogsleep_late_p99_us,
// hogsleep_late_max_us (microseconds, nearest-rank percentiles).
// Usage: gobench-hogsleep [N]   (default N = 200)
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
	for i := 0; i < 20; i++ {
		time.Sleep(time.Millisecond)
	}
	late := make([]int64, n)
	for i := 0; i < n; i++ {
		t0 := time.Now()
		time.Sleep(time.Millisecond)
		late[i] = int64(time.Since(t0) - time.Millisecond)
	}
	atomic.StoreInt32(&stop, 1)
	sort.Slice(late, func(a, b int) bool { return late[a] < late[b] })
	fmt.Printf("hogsleep_late_p50_us %.1f us\n", float64(pct(late, 50))/1e3)
	fmt.Printf("hogsleep_late_p99_us %.1f us\n", float64(pct(late, 99))/1e3)
	fmt.Printf("hogsleep_late_max_us %.1f us\n", float64(late[n-1])/1e3)
}
