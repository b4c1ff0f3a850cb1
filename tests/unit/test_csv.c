/* test_csv.c - HAProxy's CSV reader: the reference `show stat` output, columns by name in any
 * order, HAProxy's quoting (commas, doubled quotes, line breaks inside quotes), empty and
 * missing fields, and every malformed input it must refuse (truncated lines, bad quoting,
 * oversize rows and headers). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "probes/csv.h"

static struct lbw_csv *C;

static int setup(void **state)
{
    (void)state;
    C = malloc(sizeof(*C));
    return C ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    free(C);
    return 0;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = malloc(1 << 20);
    assert_non_null(f);
    assert_non_null(buf);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

static int open_str(const char *text, char *err, size_t errlen)
{
    return lbw_csv_open(C, text, strlen(text), err, errlen);
}

static const char *field(const char *name)
{
    return lbw_csv_field(C, lbw_csv_col(C, name), NULL);
}

static void reference_show_stat(void **state)
{
    (void)state;
    char err[160];
    size_t len;
    char *text = slurp("tests/fixtures/haproxy/show_stat.csv", &len);
    assert_int_equal(lbw_csv_open(C, text, len, err, sizeof(err)), 0);
    assert_int_equal(lbw_csv_col(C, "pxname"), 0);
    assert_int_equal(lbw_csv_col(C, "svname"), 1);
    assert_true(lbw_csv_col(C, "-") > lbw_csv_col(C, "agg_check_status"));
    assert_true(lbw_csv_col(C, "ssl_failed_handshake") > lbw_csv_col(C, "-"));
    assert_int_equal(lbw_csv_col(C, "h1_spliced_bytes_out"), (int)C->ncols - 1);
    assert_int_equal(lbw_csv_col(C, "nonexistent"), -1);

    const char *want[][3] = {
        {"fe_https", "FRONTEND", "OPEN"}, {"be_app", "web1", "UP"}, {"be_app", "web2", "DOWN"},
        {"be_app", "BACKEND", "UP"},      {"stats", "FRONTEND", "OPEN"},
    };
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(lbw_csv_next(C, err, sizeof(err)), 1);
        assert_string_equal(field("pxname"), want[i][0]);
        assert_string_equal(field("svname"), want[i][1]);
        assert_string_equal(field("status"), want[i][2]);
        if (i == 2) {
            assert_string_equal(field("check_status"), "L4CON");
            assert_string_equal(field("last_chk"), "Connection refused");
            assert_string_equal(field("qlimit"), "");     /* empty: does not apply */
        }
    }
    assert_int_equal(lbw_csv_next(C, err, sizeof(err)), 0);
    assert_int_equal(lbw_csv_next(C, err, sizeof(err)), 0);
    free(text);
}

static void columns_by_name_in_any_order(void **state)
{
    (void)state;
    char err[160];
    assert_int_equal(open_str("# svname,scur,pxname,\nweb1,7,be,\nBACKEND,9,be,\n", err,
                              sizeof(err)), 0);
    assert_int_equal(C->ncols, 3);
    assert_int_equal(lbw_csv_next(C, err, sizeof(err)), 1);
    assert_string_equal(field("pxname"), "be");
    assert_string_equal(field("scur"), "7");
    assert_int_equal(lbw_csv_next(C, err, sizeof(err)), 1);
    assert_string_equal(field("svname"), "BACKEND");
    assert_null(field("status"));   /* no such column */
    assert_int_equal(lbw_csv_next(C, err, sizeof(err)), 0);
}

static void quoting_as_haproxy_writes_it(void **state)
{
    (void)state;
    char err[160];
    size_t len;
    const char *text = "# a,b,c,d,\n"
                       "\"x,y\",\"say \"\"hi\"\"\",,\" padded \",\n"
                       "\"two\nlines\",\"\",\"\"\"\",last\n";
    assert_int_equal(open_str(text, err, sizeof(err)), 0);
    assert_int_equal(lbw_csv_next(C, err, sizeof(err)), 1);
    assert_string_equal(field("a"), "x,y");
    assert_string_equal(field("b"), "say \"hi\"");
    assert_string_equal(field("c"), "");
    assert_string_equal(field("d"), " padded ");
    assert_int_equal(lbw_csv_next(C, err, sizeof(err)), 1);
    assert_string_equal(lbw_csv_field(C, 0, &len), "two\nlines");
    assert_int_equal(len, 9);
    assert_string_equal(field("b"), "");
    assert_string_equal(field("c"), "\"");
    assert_string_equal(field("d"), "last");  /* no final ',' is fine too */
    assert_int_equal(C->line, 4);              /* the quoted line break counted */
    assert_int_equal(lbw_csv_next(C, err, sizeof(err)), 0);
}

static void short_rows_empty_lines_and_crlf(void **state)
{
    (void)state;
    char err[160];
    assert_int_equal(open_str("# a,b,c,\r\n\r\n1,\r\n\n1,2,3,4,5,\r\n", err, sizeof(err)), 0);
    assert_int_equal(lbw_csv_next(C, err, sizeof(err)), 1);
    assert_string_equal(field("a"), "1");
    assert_string_equal(field("b"), "");
    assert_null(field("c"));        /* the row ended before it */
    assert_int_equal(lbw_csv_next(C, err, sizeof(err)), 1);
    assert_string_equal(field("c"), "3");
    assert_int_equal(C->nfields, 3); /* fields beyond the header are ignored */
    assert_int_equal(lbw_csv_next(C, err, sizeof(err)), 0);
}

static void expect_row_error(const char *text, const char *why)
{
    char err[160];
    assert_int_equal(open_str(text, err, sizeof(err)), 0);
    int rc;
    while ((rc = lbw_csv_next(C, err, sizeof(err))) == 1)
        ;
    assert_int_equal(rc, -1);
    if (!strstr(err, why))
        fail_msg("error \"%s\" does not say \"%s\"", err, why);
    assert_int_equal(lbw_csv_next(C, err, sizeof(err)), 0); /* stays stopped */
}

static void malformed_rows(void **state)
{
    (void)state;
    expect_row_error("# a,b,\n1,2,\n3,4", "line 3: truncated");
    expect_row_error("# a,b,\n1,2,", "line 2: truncated");
    expect_row_error("# a,b,\n1,\"open\n", "line 3: unterminated quoted field");
    expect_row_error("# a,b,\n1,ab\"c,\n", "line 2: quote inside an unquoted field");
    expect_row_error("# a,b,\n\"x\"y,2,\n", "line 2: text after a closing quote");
}

static void malformed_headers(void **state)
{
    (void)state;
    char err[160];
    assert_int_equal(open_str("pxname,svname,\n", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no CSV header"));
    assert_int_equal(open_str("", err, sizeof(err)), -1);
    assert_int_equal(open_str("# pxname,svname,", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "truncated"));

    char *big = malloc(LBW_CSV_COLS_MAX * 8 + 64);
    size_t n = (size_t)sprintf(big, "# ");
    for (int i = 0; i <= LBW_CSV_COLS_MAX; i++)
        n += (size_t)sprintf(big + n, "c%d,", i);
    big[n++] = '\n';
    assert_int_equal(lbw_csv_open(C, big, n, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "more than 256 columns"));
    n = (size_t)sprintf(big, "# ");
    for (int i = 0; i < LBW_CSV_COLS_MAX; i++)
        n += (size_t)sprintf(big + n, "c%d,", i);
    big[n++] = '\n';
    assert_int_equal(lbw_csv_open(C, big, n, err, sizeof(err)), 0);
    assert_int_equal(C->ncols, LBW_CSV_COLS_MAX);
    free(big);

    char name[200];
    memset(name, 'n', sizeof(name));
    snprintf(name + 100, sizeof(name) - 100, ",\n");
    char hdr[256];
    snprintf(hdr, sizeof(hdr), "# %s", name);
    assert_int_equal(open_str(hdr, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "bad column name"));
}

static void oversize_row(void **state)
{
    (void)state;
    char err[160];
    size_t n = LBW_CSV_ROW_MAX + 64;
    char *text = malloc(n + 16);
    int len = sprintf(text, "# a,\n");
    memset(text + len, 'x', n);
    memcpy(text + len + n, ",\n", 2);
    assert_int_equal(lbw_csv_open(C, text, (size_t)len + n + 2, err, sizeof(err)), 0);
    assert_int_equal(lbw_csv_next(C, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "row longer than"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reference_show_stat),
        cmocka_unit_test(columns_by_name_in_any_order),
        cmocka_unit_test(quoting_as_haproxy_writes_it),
        cmocka_unit_test(short_rows_empty_lines_and_crlf),
        cmocka_unit_test(malformed_rows),
        cmocka_unit_test(malformed_headers),
        cmocka_unit_test(oversize_row),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
