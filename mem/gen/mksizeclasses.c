/* mem/gen/mksizeclasses.c: generates mem/sizeclasses.h, the size-class table
 * (Go's runtime/mksizeclasses.go, same rules, same 68 classes).
 *
 *   make sizeclasses      rebuilds this program, rewrites mem/sizeclasses.h
 *
 * Rules. Class 0 means "large" (page heap). Sizes step by 8 bytes up to
 * 32, by 16 up to 128, then by size/8 (a power of two) up to 2048, then by
 * 256. For each size the span is the smallest number of 8 KiB pages whose
 * leftover tail is at most 1/8 of the span (tail waste <= 12.5%). A size
 * that needs the same pages and fits the same object count as the previous
 * class replaces it. Finally each class grows to the largest size (a
 * multiple of 128 above 1024) that keeps the same object count in the same
 * pages, so no tail space is given away needlessly.
 *
 * Waste, documented per class in the generated comment: tail waste (bytes
 * of the span no object covers) is at most 12.5% of the span by
 * construction; rounding waste (a request of prev+1 bytes getting size
 * bytes) is at most (size - prev - 1) / size: 12.5% or less where the step
 * is size/8, up to 13.5% where the last pass grew a class (8192 -> 9472),
 * and larger for the small classes (a 1-byte request takes 8), as in Go.
 * Both together stay under 16.7% for every class of 128 bytes and more
 * (tests/test_mem_sizeclasses.c checks it).
 *
 * The object index of an address is offset * divmagic >> 32 (no division);
 * the generator checks that this equals offset / size for every offset in
 * the span.
 *
 * Not part of the library: tests/test_mem_sizeclasses.c includes this file
 * with MKSIZECLASSES_NO_MAIN to check that the checked-in table is what the
 * generator computes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define MKSC_PAGE_SIZE    8192
#define MKSC_MAX_SMALL    32768
#define MKSC_SMALL_DIV    8
#define MKSC_SMALL_MAX    1024
#define MKSC_LARGE_DIV    128
#define MKSC_CLASSES      68
#define MKSC_NUM_CLASS8   (MKSC_SMALL_MAX / MKSC_SMALL_DIV + 1)
#define MKSC_NUM_CLASS128 ((MKSC_MAX_SMALL - MKSC_SMALL_MAX) / MKSC_LARGE_DIV + 1)

struct mksc_table {
    int n;
    uint32_t size[MKSC_CLASSES];
    uint32_t npages[MKSC_CLASSES];
    uint32_t divmagic[MKSC_CLASSES];
    uint8_t class8[MKSC_NUM_CLASS8];
    uint8_t class128[MKSC_NUM_CLASS128];
};

static int mksc_pow2(uint32_t x)
{
    return x && !(x & (x - 1));
}

/* Fill *t; returns 0, or -1 with a message on stderr when a check fails. */
static int mksc_compute(struct mksc_table *t)
{
    uint32_t align = 8;
    int n = 1;
    t->size[0] = t->npages[0] = t->divmagic[0] = 0;
    for (uint32_t size = align; size <= MKSC_MAX_SMALL; size += align) {
        if (mksc_pow2(size)) {
            if (size >= 2048)
                align = 256;
            else if (size >= 128)
                align = size / 8;
            else if (size >= 32)
                align = 16;
        }
        uint32_t alloc = MKSC_PAGE_SIZE;
        while (alloc % size > alloc / 8)
            alloc += MKSC_PAGE_SIZE;
        uint32_t npages = alloc / MKSC_PAGE_SIZE;
        if (n > 1 && npages == t->npages[n - 1] && alloc / size == alloc / t->size[n - 1]) {
            t->size[n - 1] = size;
            continue;
        }
        if (n == MKSC_CLASSES) {
            fprintf(stderr, "mksizeclasses: more than %d classes\n", MKSC_CLASSES);
            return -1;
        }
        t->size[n] = size;
        t->npages[n] = npages;
        n++;
    }
    if (n != MKSC_CLASSES) {
        fprintf(stderr, "mksizeclasses: %d classes, expected %d\n", n, MKSC_CLASSES);
        return -1;
    }
    t->n = n;
    for (int i = 1; i < n; i++) {
        uint32_t psize = t->npages[i] * MKSC_PAGE_SIZE;
        uint32_t nsize = (psize / (psize / t->size[i])) & ~(uint32_t)(MKSC_LARGE_DIV - 1);
        if (nsize > t->size[i]) t->size[i] = nsize;
    }
    for (int i = 1; i < n; i++) {
        uint32_t size = t->size[i], span = t->npages[i] * MKSC_PAGE_SIZE;
        t->divmagic[i] = (uint32_t)(UINT32_MAX / size + 1);
        for (uint32_t off = 0; off < span; off++)
            if ((uint32_t)(((uint64_t)off * t->divmagic[i]) >> 32) != off / size) {
                fprintf(stderr, "mksizeclasses: divmagic of class %d fails at %u\n", i, off);
                return -1;
            }
    }
    /* size -> class lookup: the smallest class holding the size */
    int c = 1;
    for (uint32_t s = 0; s <= MKSC_SMALL_MAX; s += MKSC_SMALL_DIV) {
        while (t->size[c] < s)
            c++;
        t->class8[s / MKSC_SMALL_DIV] = (uint8_t)c;
    }
    for (uint32_t s = MKSC_SMALL_MAX; s <= MKSC_MAX_SMALL; s += MKSC_LARGE_DIV) {
        while (t->size[c] < s)
            c++;
        t->class128[(s - MKSC_SMALL_MAX) / MKSC_LARGE_DIV] = (uint8_t)c;
    }
    return 0;
}

#ifndef MKSIZECLASSES_NO_MAIN
static void put_array(const char *decl, const uint32_t *v, int n)
{
    printf("%s = {", decl);
    for (int i = 0; i < n; i++)
        printf("%s%u", i ? ", " : "", v[i]);
    printf("};\n");
}

int main(void)
{
    struct mksc_table t;
    if (mksc_compute(&t) < 0) return 1;
    printf("/* mem/sizeclasses.h: GENERATED by mem/gen/mksizeclasses.c (make sizeclasses);\n"
           " * do not edit. tests/test_mem_sizeclasses.c checks that it matches.\n"
           " *\n"
           " * class  bytes/obj  bytes/span  objects  tail waste  max waste\n");
    double worst = 0, worst_small = 0;
    for (int i = 1; i < t.n; i++) {
        uint32_t span = t.npages[i] * MKSC_PAGE_SIZE, objs = span / t.size[i];
        uint32_t tail = span - objs * t.size[i];
        double maxw = 100.0 * ((double)(t.size[i] - t.size[i - 1] - 1) * objs + tail) / span;
        if (t.size[i] >= 128 && maxw > worst) worst = maxw;
        if (t.size[i] < 128 && maxw > worst_small) worst_small = maxw;
        printf(" * %5d  %9u  %10u  %7u  %10u  %8.2f%%\n", i, t.size[i], span, objs, tail, maxw);
    }
    printf(" *\n * Worst case (all objects of the span rounded up the most, plus the tail):\n"
           " * %.2f%% for classes of 128 bytes and more, %.2f%% below (a 1-byte request\n"
           " * takes 8). Tail waste alone is at most 12.5%% of a span for every class.\n */\n",
           worst, worst_small);
    printf("#ifndef GORT_MEM_SIZECLASSES_H\n#define GORT_MEM_SIZECLASSES_H\n\n#include "
           "<stdint.h>\n\n");
    printf("#define NUM_SIZE_CLASSES %d\n#define MAX_SMALL_SIZE   %d\n#define SMALL_SIZE_DIV   %d\n"
           "#define SMALL_SIZE_MAX   %d\n#define LARGE_SIZE_DIV   %d\n\n",
           t.n, MKSC_MAX_SMALL, MKSC_SMALL_DIV, MKSC_SMALL_MAX, MKSC_LARGE_DIV);
    put_array("static const uint32_t class_to_size[NUM_SIZE_CLASSES]", t.size, t.n);
    put_array("static const uint32_t class_to_npages[NUM_SIZE_CLASSES]", t.npages, t.n);
    put_array("static const uint32_t class_to_divmagic[NUM_SIZE_CLASSES]", t.divmagic, t.n);
    uint32_t tmp[MKSC_NUM_CLASS128];
    for (int i = 0; i < MKSC_NUM_CLASS8; i++)
        tmp[i] = t.class8[i];
    put_array("static const uint8_t size_to_class8[SMALL_SIZE_MAX / SMALL_SIZE_DIV + 1]", tmp,
              MKSC_NUM_CLASS8);
    for (int i = 0; i < MKSC_NUM_CLASS128; i++)
        tmp[i] = t.class128[i];
    put_array("static const uint8_t size_to_class128[(MAX_SMALL_SIZE - SMALL_SIZE_MAX) / "
              "LARGE_SIZE_DIV + 1]",
              tmp, MKSC_NUM_CLASS128);
    printf("\n#endif\n");
    return 0;
}
#endif
