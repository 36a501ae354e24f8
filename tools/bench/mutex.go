// mutex: Go twin of mutex.c. Cost of sync.Mutex Lock+Unlock.
//
// Contended: 64 goroutines on GOMAXPROCS processors, each doing N times
// { Lock; counter++; Unlock } on one mutex; elapsed / (64 * N).
// Uncontended: one goroutine doing Lock+Unlock 20 * N times.
// Each measurement is preceded by an untimed warm-up of a tenth of its work.
//
// Output (stdout): mutex_contended_ns, mutex_uncontended_ns in ns per
// lock+unlock.
// Usage: gobench-mutex [N]   (default N = 100000)
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"
)

const (
	defaultN   = 100000
	goroutines = 64
)

var (
	mu      sync.Mutex
	counter int
)

func worker(n int, wg *sync.WaitGroup) {
	for i := 0; i < n; i++ {
		mu.Lock()
		counter++
		mu.Unlock()
	}
	wg.Done()
}

// contended returns ns per Lock+Unlock with 64 goroutines doing n each.
func contended(n int) float64 {
	var wg sync.WaitGroup
	counter = 0
	wg.Add(goroutines)
	t0 := time.Now()
	for i := 0; i < goroutines; i++ {
		go worker(n, &wg)
	}
	wg.Wait()
	el := time.Since(t0)
	if counter != goroutines*n {
		fmt.Fprintf(os.Stderr, "mutex: counter %d, want %d\n", counter, goroutines*n)
		os.Exit(1)
	}
	return float64(el.Nanoseconds()) / (goroutines * float64(n))
}

// uncontended returns ns per Lock+Unlock, one goroutine, m iterations.
func uncontended(m int) float64 {
	var l sync.Mutex
	t0 := time.Now()
	for i := 0; i < m; i++ {
		l.Lock()
		l.Unlock()
	}
	return float64(time.Since(t0).Nanoseconds()) / float64(m)
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
	fmt.Fprintf(os.Stderr, "mutex: N=%d, %d goroutines, %d processors\n", n, goroutines,
		runtime.GOMAXPROCS(0))

	contended(warm)
	c := contended(n)
	uncontended(2 * n)
	u := uncontended(20 * n)

	fmt.Printf("mutex_contended_ns %.1f ns/op\n", c)
	fmt.Printf("mutex_uncontended_ns %.1f ns/op\n", u)
}
