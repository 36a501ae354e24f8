// pingpong: Go twin of pingpong.c. Round trip of one value between two
// goroutines over unbuffered channels, default GOMAXPROCS, after an untimed
// warm-up of N/10 round trips.
//
// Output (stdout): pingpong_ns, ns per round trip.
// Usage: gobench-pingpong [N]   (default N = 1000000)
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"
)

const defaultN = 1000000

var bad int

// runPhase runs n round trips; returns ns per round trip.
func runPhase(n int) float64 {
	ping := make(chan int)
	pong := make(chan int)
	var wg sync.WaitGroup
	wg.Add(2)
	t0 := time.Now()
	go func() {
		for i := 0; i < n; i++ {
			v := <-ping
			pong <- v
		}
		wg.Done()
	}()
	go func() {
		for i := 0; i < n; i++ {
			ping <- i
			if v := <-pong; v != i {
				bad++
			}
		}
		wg.Done()
	}()
	wg.Wait()
	return float64(time.Since(t0).Nanoseconds()) / float64(n)
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
	fmt.Fprintf(os.Stderr, "pingpong: N=%d, %d processors\n", n, runtime.GOMAXPROCS(0))
	warm := n / 10
	if warm < 1 {
		warm = 1
	}
	runPhase(warm)
	ns := runPhase(n)
	if bad != 0 {
		fmt.Fprintf(os.Stderr, "pingpong: %d values came back wrong\n", bad)
		os.Exit(1)
	}
	fmt.Printf("pingpong_ns %.1f ns/op\n", ns)
}
