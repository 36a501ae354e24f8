// buffered: Go twin of buffered.c. One producer sends 1..N through a
// 128-slot channel and closes it; one consumer receives until closed and
// checks the sum. Default GOMAXPROCS, after an untimed warm-up of N/10 items.
//
// Output (stdout): buffered_ns, ns per item.
// Usage: gobench-buffered [N]   (default N = 5000000)
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
	defaultN = 5000000
	slots    = 128
)

// runPhase moves n items; returns ns per item and the consumer's sum.
func runPhase(n int) (float64, uint64) {
	c := make(chan int, slots)
	var sum uint64
	var wg sync.WaitGroup
	wg.Add(2)
	t0 := time.Now()
	go func() {
		var s uint64
		for v := range c {
			s += uint64(v)
		}
		sum = s
		wg.Done()
	}()
	go func() {
		for i := 1; i <= n; i++ {
			c <- i
		}
		close(c)
		wg.Done()
	}()
	wg.Wait()
	return float64(time.Since(t0).Nanoseconds()) / float64(n), sum
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
	fmt.Fprintf(os.Stderr, "buffered: N=%d, %d slots, %d processors\n", n, slots, runtime.GOMAXPROCS(0))
	warm := n / 10
	if warm < 1 {
		warm = 1
	}
	runPhase(warm)
	ns, sum := runPhase(n)
	if sum != uint64(n)*uint64(n+1)/2 {
		fmt.Fprintf(os.Stderr, "buffered: wrong sum %d\n", sum)
		os.Exit(1)
	}
	fmt.Printf("buffered_ns %.1f ns/op\n", ns)
}
