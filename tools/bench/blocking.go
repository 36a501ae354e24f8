// blocking: Go twin of blocking.c. N getppid system calls with
// syscall.RawSyscall (no scheduler involvement), then N with
// syscall.Syscall (entersyscall/exitsyscall around the call); the
// difference per call is what Go's syscall hand-off costs.
//
// Output (stdout): blocking_region_ns, blocking_call_ns.
// Usage: gobench-blocking [N]   (default N = 2000000)
package main

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"syscall"
	"time"
)

func median(v []float64) float64 {
	sort.Float64s(v)
	return v[len(v)/2]
}

func main() {
	n := 2000000
	if len(os.Args) > 1 {
		v, err := strconv.Atoi(os.Args[1])
		if err != nil || v <= 0 {
			fmt.Fprintf(os.Stderr, "usage: %s [N > 0]\n", os.Args[0])
			os.Exit(2)
		}
		n = v
	}
	bare := make([]float64, 5)
	region := make([]float64, 5)
	for r := 0; r < 5; r++ {
		t0 := time.Now()
		for i := 0; i < n/5; i++ {
			syscall.RawSyscall(syscall.SYS_GETPPID, 0, 0, 0)
		}
		t1 := time.Now()
		for i := 0; i < n/5; i++ {
			syscall.Syscall(syscall.SYS_GETPPID, 0, 0, 0)
		}
		t2 := time.Now()
		bare[r] = float64(t1.Sub(t0).Nanoseconds()) / float64(n/5)
		region[r] = float64(t2.Sub(t1).Nanoseconds()) / float64(n/5)
	}
	b, g := median(bare), median(region)
	fmt.Printf("blocking_region_ns %.1f ns\n", g-b)
	fmt.Printf("blocking_call_ns %.1f ns\n", g)
}
