// httpraw: a raw-TCP HTTP/1.1 "Hello, World!" server in Go, the Go column of
// netbench.sh's wrk comparison (gort-httpd vs nginx vs this). No net/http:
// net.Listen, a goroutine per connection reading into an 8 KiB buffer, every
// complete request head in what was read answered with the same fixed
// response, all answers to one read sent in one Write (keep-alive and
// pipelining). A Content-Length body is skipped; a head over 8 KiB, or a
// read or write error, closes the connection. The Date header is refreshed
// once a second, as gort-httpd and nginx do.
//
// Not a benchmark of its own (no C twin; run.sh does not run it): it prints
// "httpraw: listening on ADDR:PORT" on stderr once ready and serves until
// killed.
// Usage: gobench-httpraw [-a ADDR] -p PORT   (ADDR default 127.0.0.1)
package main

import (
	"bytes"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

const bufSize = 8192

var header atomic.Value // []byte: the response up to and including the blank line

func setHeader(now time.Time) {
	header.Store([]byte("HTTP/1.1 200 OK\r\nServer: httpraw\r\nDate: " +
		now.UTC().Format(time.RFC1123)[:25] + " GMT\r\n" +
		"Content-Type: text/plain\r\nContent-Length: 13\r\n\r\n"))
}

var body = []byte("Hello, World!")

// contentLength returns the Content-Length of the head (0 when absent, -1 when bad).
func contentLength(head []byte) int {
	for len(head) > 0 {
		i := bytes.Index(head, []byte("\r\n"))
		if i < 0 {
			i = len(head)
		}
		line := head[:i]
		if len(line) > 15 && bytes.EqualFold(line[:15], []byte("content-length:")) {
			v, err := strconv.Atoi(string(bytes.TrimSpace(line[15:])))
			if err != nil || v < 0 {
				return -1
			}
			return v
		}
		if i == len(head) {
			break
		}
		head = head[i+2:]
	}
	return 0
}

func serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, bufSize)
	out := make([]byte, 0, 4096)
	have := 0 // bytes in buf not yet consumed
	skip := 0 // body bytes still to drop
	for {
		n, err := c.Read(buf[have:])
		if n == 0 && err != nil {
			return
		}
		have += n
		start := 0
		out = out[:0]
		hdr := header.Load().([]byte)
		for {
			if skip > 0 {
				d := have - start
				if d > skip {
					d = skip
				}
				start += d
				skip -= d
				if skip > 0 {
					break
				}
			}
			end := bytes.Index(buf[start:have], []byte("\r\n\r\n"))
			if end < 0 {
				break
			}
			cl := contentLength(buf[start : start+end])
			if cl < 0 {
				return
			}
			out = append(out, hdr...)
			out = append(out, body...)
			start += end + 4
			skip = cl
		}
		if len(out) > 0 {
			if _, err := c.Write(out); err != nil {
				return
			}
		}
		have = copy(buf, buf[start:have])
		if have == len(buf) {
			return // a head larger than the buffer
		}
	}
}

func main() {
	addr := flag.String("a", "127.0.0.1", "address to listen on")
	port := flag.Int("p", -1, "TCP port (0: any free port)")
	flag.Parse()
	if *port < 0 || *port > 65535 || flag.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "usage: %s [-a ADDR] -p PORT\n", os.Args[0])
		os.Exit(2)
	}
	setHeader(time.Now())
	go func() {
		for now := range time.Tick(time.Second) {
			setHeader(now)
		}
	}()
	ln, err := net.Listen("tcp", net.JoinHostPort(*addr, strconv.Itoa(*port)))
	if err != nil {
		fmt.Fprintf(os.Stderr, "httpraw: %v\n", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "httpraw: listening on %s\n", ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			time.Sleep(10 * time.Millisecond) // EMFILE and the like: back off
			continue
		}
		go serve(c)
	}
}
