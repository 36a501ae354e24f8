/* alloc.h: which allocator an allocator benchmark (bintree, xmalloc, larson, rss) calls.
 * The same program is built four times (tools/bench/allocbench.sh) with one of
 *   -DALLOC_GORT (the default: bench-NAME from the Makefile)  gort_malloc / gort_free
 *   -DALLOC_MIMALLOC   mi_malloc / mi_free (libmimalloc.so; linked -lmimalloc)
 *   -DALLOC_JEMALLOC   malloc / free from libjemalloc (linked statically, so it replaces
 *                      glibc's malloc in the whole program)
 *   -DALLOC_GLIBC      glibc's malloc / free
 * Every variant runs under gort_main with the same goroutines and processors: only the
 * allocator differs. ALLOC_NAME names the variant in the output.
 */
#ifndef GORT_TOOLS_BENCH_ALLOC_H
#define GORT_TOOLS_BENCH_ALLOC_H

#include <stdlib.h>

#include "gort.h"

#if defined(ALLOC_MIMALLOC)
#include <mimalloc.h>
#define bench_malloc(n) mi_malloc(n)
#define bench_free(p)   mi_free(p)
#define ALLOC_NAME      "mimalloc"
#elif defined(ALLOC_JEMALLOC)
#define bench_malloc(n) malloc(n)
#define bench_free(p)   free(p)
#define ALLOC_NAME      "jemalloc"
#elif defined(ALLOC_GLIBC)
#define bench_malloc(n) malloc(n)
#define bench_free(p)   free(p)
#define ALLOC_NAME      "glibc"
#else
#define bench_malloc(n) gort_malloc(n)
#define bench_free(p)   gort_free(p)
#define ALLOC_NAME      "gort"
#endif

#endif
