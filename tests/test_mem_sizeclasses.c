/* tests/test_mem_sizeclasses.c: the size-class table (mem/sizeclasses.h)
 * is what its generator (mem/gen/mksizeclasses.c, included here without its
 * main) computes, and has the properties the allocator relies on: sizes
 * increasing, 8-aligned, 16-aligned from 32 bytes, objects of a class
 * aligned to the largest power of two dividing its size; tail waste at most
 * 1/8 of a span; the lookup tables give the smallest class that holds each
 * size; the division magic is exact for every offset in a span. And the
 * spans the allocator really cuts (mem_class_npages) keep those promises,
 * with gort_free's one-multiply object-start test exact on them.
 * No runtime needed beyond cmocka's thread (gort_main as every suite).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "gort.h"
#include "mem/mem.h"

#define MKSIZECLASSES_NO_MAIN
#include "mem/gen/mksizeclasses.c"

static void test_table_matches_generator(void **state)
{
    (void)state;
    struct mksc_table t;
    assert_int_equal(mksc_compute(&t), 0);
    assert_int_equal(t.n, NUM_SIZE_CLASSES);
    for (int i = 0; i < NUM_SIZE_CLASSES; i++) {
        assert_int_equal(t.size[i], class_to_size[i]);
        assert_int_equal(t.npages[i], class_to_npages[i]);
        assert_int_equal(t.divmagic[i], class_to_divmagic[i]);
    }
    assert_memory_equal(t.class8, size_to_class8, sizeof size_to_class8);
    assert_memory_equal(t.class128, size_to_class128, sizeof size_to_class128);
}

static void test_table_invariants(void **state)
{
    (void)state;
    assert_int_equal(NUM_SIZE_CLASSES, 68);
    assert_int_equal(class_to_size[NUM_SIZE_CLASSES - 1], MAX_SMALL_SIZE);
    assert_int_equal(PAGE_SIZE, 8192);
    for (int i = 1; i < NUM_SIZE_CLASSES; i++) {
        uint32_t size = class_to_size[i], span = class_to_npages[i] * (uint32_t)PAGE_SIZE;
        assert_true(size > class_to_size[i - 1]);
        assert_int_equal(size % 8, 0);
        if (size >= 32) assert_int_equal(size % 16, 0);
        assert_true(span / size >= 1);
        assert_true(span % size <= span / 8); /* tail waste <= 12.5% */
        if (size >= 128) { /* worst case of the span < 16.7% (the table's comment) */
            uint32_t objs = span / size;
            uint64_t worst = (uint64_t)(size - class_to_size[i - 1] - 1) * objs + span % size;
            assert_true(worst * 1000 < (uint64_t)span * 167);
        }
        for (uint32_t off = 0; off < span; off += 8)
            assert_int_equal((uint32_t)(((uint64_t)off * class_to_divmagic[i]) >> 32), off / size);
    }
    for (size_t n = 0; n <= MAX_SMALL_SIZE; n++) {
        unsigned c = size_to_class(n);
        assert_true(c >= 1 && c < NUM_SIZE_CLASSES);
        assert_true(class_to_size[c] >= n);
        assert_true(class_to_size[c - 1] < n || c == 1);
    }
}

/* The spans the allocator cuts (mem_class_npages: the table's pages, grown)
 * keep the table's promises: tail waste <= 1/8, at most GC_MARK_WORDS * 64
 * objects, the division magic exact for every offset; and gort_free's
 * object-start test (s->divtest, mem.h) is exact for every byte offset. */
static void test_runtime_spans(void **state)
{
    (void)state;
    for (unsigned i = 1; i < NUM_SIZE_CLASSES; i++) {
        uint32_t np = mem_class_npages(i), size = class_to_size[i];
        uint32_t span = np * (uint32_t)PAGE_SIZE, objs = span / size;
        assert_true(np >= class_to_npages[i] && np % class_to_npages[i] == 0);
        assert_true(np >= SPAN_MIN_PAGES || np == class_to_npages[i] ||
                    objs * 2 > GC_MARK_WORDS * 64);
        assert_true(objs >= 1 && objs <= GC_MARK_WORDS * 64);
        assert_true(span % size <= span / 8);
        uint64_t divtest = UINT64_MAX / size + 1;
        for (uint32_t off = 0; off < objs * size; off++) {
            if (off % 8 == 0)
                assert_int_equal((uint32_t)(((uint64_t)off * class_to_divmagic[i]) >> 32),
                                 off / size);
            bool start = (uint64_t)off * divtest < divtest;
            if (start != (off % size == 0)) fail_msg("class %u offset %u: divtest wrong", i, off);
        }
    }
}

static int run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    gort_lock_thread();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_matches_generator),
        cmocka_unit_test(test_runtime_spans),
        cmocka_unit_test(test_table_invariants),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

int main(int argc, char **argv)
{
    return gort_main(run, argc, argv);
}
