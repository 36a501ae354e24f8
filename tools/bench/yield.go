// yield: Go twin of yield.c. Cost of runtime.Gosched between two goroutines,
// first with GOMAXPROCS(1), then with the default number of processors.
// Each phase is preceded by an untimed warm-up of N/10 iterations.
//
// Output (stdout): yield_ns, yield_allp_ns in ns per yield.
// Usage: gobench-yield [N]   (default N = 2000000)
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"
)

const defaultN = 2000000

func yielder(n int, wg *sync.WaitGroup) {
	for i := 0; i < n; i++ {
		runtime.Gosched()
	}
	wg.Done()
}

// runPhase runs two yielders for n iterations each; returns ns per yield.
func runPhase(n int) float64 {
	var wg sync.WaitGroup
	wg.Add(2)
	t0 := time.Now()
	go yielder(n, &wg)
	go yielder(n, &wg)
	wg.Wait()
	return float64(time.Since(t0).Nanoseconds()) / (2 * float64(n))
}

func parseN(def int) int {
	if len(os.Args) < 2 {
		return def
	}
	v, err := strconv.Atoi(os.Args[1])
	if err != nil || v <= 0 {
		fmt.Fprintf(os.Stderr, "usage: %s [N > 0]\n", os.Args[0])
		os.Exit(2)
	}
	return v
}

func main() {
	n := parseN(defaultN)
	warm := n / 10
	if warm < 1 {
		warm = 1
	}

	old := runtime.GOMAXPROCS(1)
	fmt.Fprintf(os.Stderr, "yield: N=%d, processors 1 then %d\n", n, old)
	runPhase(warm)
	one := runPhase(n)

	runtime.GOMAXPROCS(old)
	runPhase(warm)
	all := runPhase(n)

	fmt.Printf("yield_ns %.1f ns/op\n", one)
	fmt.Printf("yield_allp_ns %.1f ns/op\n", all)
}
