/* test_procfs.c - bounded line streaming (lines across reads, over-long lines skipped, a last
 * line without '\n' ignored), bounded whole-file reads and the number parsers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "probes/procfs.h"
#include "tests/support/testutil.h"

struct lines {
    size_t n;
    char text[16][64];
};

static int keep_line(void *arg, const char *line, size_t len)
{
    struct lines *l = arg;
    if (l->n < 16 && len < 64) {
        memcpy(l->text[l->n], line, len);
        l->text[l->n][len] = '\0';
    }
    l->n++;
    return 0;
}

static int stop_after_two(void *arg, const char *line, size_t len)
{
    keep_line(arg, line, len);
    return ((struct lines *)arg)->n == 2;
}

static void lines_ignore_unterminated_tail(void **state)
{
    (void)state;
    struct lines l = {0};
    const char buf[] = "a b\n\nlast without newline";
    assert_int_equal(lbw_procfs_lines(buf, sizeof(buf) - 1, keep_line, &l), 2);
    assert_string_equal(l.text[0], "a b");
    assert_string_equal(l.text[1], "");
}

static void stream_through_small_buffer(void **state)
{
    (void)state;
    char dir[256], path[300], buf[8];
    assert_int_equal(tu_tmpdir("lbw-procfs", dir, sizeof(dir)), 0);
    snprintf(path, sizeof(path), "%s/f", dir);
    const char text[] = "one\ntwo\nthis line is too long\nthree\nabcdefg\nabcdefgh\n4\ntail";
    assert_int_equal(tu_write_file(path, text, sizeof(text) - 1), 0);

    struct lines l = {0};
    size_t skipped = 0;
    assert_int_equal(lbw_procfs_stream(AT_FDCWD, path, buf, sizeof(buf), keep_line, &l,
                                       &skipped), 0);
    assert_int_equal(skipped, 2); /* the long line and "abcdefgh" (8 bytes + '\n' > 8) */
    assert_int_equal(l.n, 5);
    assert_string_equal(l.text[0], "one");
    assert_string_equal(l.text[1], "two");
    assert_string_equal(l.text[2], "three");
    assert_string_equal(l.text[3], "abcdefg");
    assert_string_equal(l.text[4], "4");

    struct lines two = {0};
    assert_int_equal(lbw_procfs_stream(AT_FDCWD, path, buf, sizeof(buf), stop_after_two, &two,
                                       NULL), 0);
    assert_int_equal(two.n, 2);

    char small[10];
    int trunc = 0;
    assert_int_equal(lbw_procfs_read(AT_FDCWD, path, small, sizeof(small), &trunc), 9);
    assert_int_equal(trunc, 1);
    assert_string_equal(small, "one\ntwo\nt");
    tu_rmrf(dir);

    assert_int_equal(lbw_procfs_stream(AT_FDCWD, "/nonexistent/x", buf, sizeof(buf), keep_line,
                                       &l, NULL), -1);
}

static struct lbw_span sp(const char *s)
{
    struct lbw_span t = {s, strlen(s)};
    return t;
}

static void numbers(void **state)
{
    (void)state;
    uint64_t u;
    int64_t i;
    double d;
    assert_int_equal(lbw_procfs_u64(sp("18446744073709551615"), &u), 0);
    assert_true(u == UINT64_MAX);
    assert_int_equal(lbw_procfs_u64(sp("18446744073709551616"), &u), -1);
    assert_int_equal(lbw_procfs_u64(sp(""), &u), -1);
    assert_int_equal(lbw_procfs_u64(sp("12a"), &u), -1);
    assert_int_equal(lbw_procfs_u64(sp("-1"), &u), -1);
    assert_int_equal(lbw_procfs_i64(sp("-1"), &i), 0);
    assert_true(i == -1);
    assert_int_equal(lbw_procfs_i64(sp("-9223372036854775808"), &i), 0);
    assert_true(i == INT64_MIN);
    assert_int_equal(lbw_procfs_i64(sp("9223372036854775808"), &i), -1);
    assert_int_equal(lbw_procfs_i64(sp("-"), &i), -1);
    assert_int_equal(lbw_procfs_decimal(sp("0.75"), &d), 0);
    assert_float_equal(d, 0.75, 1e-12);
    assert_int_equal(lbw_procfs_decimal(sp("12"), &d), 0);
    assert_float_equal(d, 12, 1e-12);
    assert_int_equal(lbw_procfs_decimal(sp("1."), &d), -1);
    assert_int_equal(lbw_procfs_decimal(sp(".5"), &d), -1);
    assert_int_equal(lbw_procfs_decimal(sp("1.5x"), &d), -1);

    size_t pos = 0;
    struct lbw_span t;
    const char line[] = " \tab  c\t";
    assert_int_equal(lbw_procfs_token(line, sizeof(line) - 1, &pos, &t), 1);
    assert_true(lbw_procfs_eq(t, "ab"));
    assert_int_equal(lbw_procfs_token(line, sizeof(line) - 1, &pos, &t), 1);
    assert_true(lbw_procfs_eq(t, "c"));
    assert_int_equal(lbw_procfs_token(line, sizeof(line) - 1, &pos, &t), 0);

    char out[3];
    assert_int_equal(lbw_procfs_copy(sp("ab"), out, sizeof(out)), 0);
    assert_int_equal(lbw_procfs_copy(sp("abc"), out, sizeof(out)), -1);
    struct lbw_span nul = {"a\0b", 3};
    char big[8];
    assert_int_equal(lbw_procfs_copy(nul, big, sizeof(big)), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lines_ignore_unterminated_tail),
        cmocka_unit_test(stream_through_small_buffer),
        cmocka_unit_test(numbers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
