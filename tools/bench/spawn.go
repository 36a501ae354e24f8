// spawn: Go twin of spawn.c. Cost of starting a goroutine that only calls
// wg.Done; main spawns N of them and waits (wg.Wait). One untimed warm-up
// round, then 10 timed rounds.
//
// Output (stdout): spawn_ns, median over rounds of elapsed / N.
// Usage: gobench-spawn [N]   (N per round, default 100000)
package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"time"
)

const (
	defaultN = 100000
	rounds   = 10
)

func worker(wg *sync.WaitGroup) {
	wg.Done()
}

// roundNs spawns n goroutines and waits for them; returns ns per goroutine.
func roundNs(n int) float64 {
	var wg sync.WaitGroup
	wg.Add(n)
	t0 := time.Now()
	for i := 0; i < n; i++ {
		go worker(&wg)
	}
	wg.Wait()
	return float64(time.Since(t0).Nanoseconds()) / float64(n)
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
	n := parseN(defaultN)
	fmt.Fprintf(os.Stderr, "spawn: N=%d, %d rounds, %d processors\n", n, rounds,
		runtime.GOMAXPROCS(0))

	roundNs(n) // warm-up
	r := make([]float64, rounds)
	for i := range r {
		r[i] = roundNs(n)
	}
	sort.Float64s(r)
	med := r[rounds/2]
	if rounds%2 == 0 {
		med = (r[rounds/2-1] + r[rounds/2]) / 2
	}
	fmt.Fprintf(os.Stderr, "spawn: min %.1f max %.1f ns/op\n", r[0], r[rounds-1])

	fmt.Printf("spawn_ns %.1f ns/op\n", med)
}
