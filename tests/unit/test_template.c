/* test_template.c - annotation templates: rendering of every action and value format, cutting
 * at the output size (on a UTF-8 boundary), invalid templates rendered as text, and every
 * error lbw_template_check reports, with its exact reason and byte offset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerting/template.h"

#define LABELS "ALERTS{alertname=\"CertExpiringSoon\",severity=\"warning\",target=\"www\"}"

/* Renders tmpl (which must check) with LABELS and value; asserts the text. */
static void expect_render(const char *tmpl, double value, const char *want)
{
    struct lbw_key_parsed k;
    char out[1024], why[LBW_TEMPLATE_WHY_MAX] = "";
    size_t at = 0;

    if (lbw_template_check(tmpl, why, sizeof(why), &at) != 0)
        fail_msg("template %s refused: %s at %zu", tmpl, why, at);
    assert_int_equal(lbw_key_parse(LABELS, strlen(LABELS), &k), 0);
    size_t n = lbw_template_render(tmpl, &k, value, out, sizeof(out));
    if (strcmp(out, want) != 0)
        fail_msg("template %s value %g: got \"%s\", want \"%s\"", tmpl, value, out, want);
    assert_int_equal(n, strlen(want));
}

static void literal_text(void **state)
{
    (void)state;
    expect_render("", 1, "");
    expect_render("plain text, { and } alone are text", 1, "plain text, { and } alone are text");
    expect_render("ünïcödé stays", 1, "ünïcödé stays");
}

static void variables(void **state)
{
    (void)state;
    expect_render("{{ $labels.target }}", 1, "www");
    expect_render("{{$labels.severity}}", 1, "warning");
    expect_render("[{{ $labels.missing }}]", 1, "[]");
    expect_render("{{ $alertname }}", 1, "CertExpiringSoon");
    expect_render("{{\n  $value\t}}", 0.25, "0.25");
    expect_render("certificate of {{ $labels.target }} expires in {{ humanizeDuration $value }}",
                  5 * 86400 + 3 * 3600, "certificate of www expires in 5d 3h");
}

static void value_format(void **state)
{
    (void)state;
    char buf[64];
    static const struct {
        double v;
        const char *want;
    } cases[] = {
        {3, "3"},           {0.25, "0.25"},         {123456, "123456"},
        {1234567, "1.234567e+06"}, {1.7e9, "1.7e+09"}, {0.0001, "0.0001"},
        {0.00001, "1e-05"}, {-2.5, "-2.5"},         {0.1 + 0.2, "0.30000000000000004"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        lbw_format_value(cases[i].v, buf, sizeof(buf));
        if (strcmp(buf, cases[i].want) != 0)
            fail_msg("%.17g: got %s, want %s", cases[i].v, buf, cases[i].want);
    }
    assert_string_equal(lbw_format_value(NAN, buf, sizeof(buf)), "NaN");
    assert_string_equal(lbw_format_value(INFINITY, buf, sizeof(buf)), "+Inf");
    assert_string_equal(lbw_format_value(-INFINITY, buf, sizeof(buf)), "-Inf");
    expect_render("{{ $value }}", 1.7e9, "1.7e+09");
}

static void humanize(void **state)
{
    (void)state;
    expect_render("{{ humanize $value }}", 1500, "1.5k");
    expect_render("{{ humanize $value }}", 2300000, "2.3M");
    expect_render("{{ humanize $value }}", 1234.5678, "1.235k");
    expect_render("{{ humanize $value }}", -1500, "-1.5k");
    expect_render("{{ humanize $value }}", 999, "999");
    expect_render("{{ humanize $value }}", 0.25, "250m");
    expect_render("{{ humanize $value }}", 0.000002, "2u");
    expect_render("{{ humanize $value }}", 0, "0");
    expect_render("{{ humanize $value }}", NAN, "NaN");
}

static void humanize_duration(void **state)
{
    (void)state;
    static const struct {
        double v;
        const char *want;
    } cases[] = {
        {2 * 86400 + 3 * 3600, "2d 3h"}, {310, "5m 10s"}, {300, "5m"},     {3600, "1h"},
        {3661, "1h 1m"},   {14 * 86400 - 1, "13d 23h"}, {42, "42s"},      {1.5, "1.5s"},
        {0.5, "500ms"},    {0, "0s"},                  {-90, "-1m 30s"}, {86400, "1d"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_render("{{ humanizeDuration $value }}", cases[i].v, cases[i].want);
}

static void printf_forms(void **state)
{
    (void)state;
    expect_render("{{ printf \"%.1f\" $value }}", 3.14159, "3.1");
    expect_render("{{ printf \"%.0f\" $value }}", 2.5, "2");
    expect_render("{{ printf \"%.12f\" $value }}", 0.5, "0.500000000000");
    expect_render("{{ printf \"%d\" $value }}", 2.9, "2");
    expect_render("{{ printf \"%d\" $value }}", -7.2, "-7");
    expect_render("{{ printf \"%d\" $value }}", NAN, "NaN");
    expect_render("{{ printf \"%s\" $value }}", 0.25, "0.25");
    expect_render("{{ printf \"host=%s\" $labels.target }}", 1, "host=www");
    expect_render("{{ printf \"[%s]\" $alertname }}", 1, "[CertExpiringSoon]");
    expect_render("{{ printf \"100%% of %.0f\" $value }}", 3, "100% of 3");
    expect_render("{{ printf \"a\\\"b\\\\c\\n%d\" $value }}", 1, "a\"b\\c\n1");
    expect_render("{{ printf \"%.2f\" $value }}", INFINITY, "+Inf");
}

static void no_labels(void **state)
{
    (void)state;
    char out[64];
    lbw_template_render("[{{ $labels.target }}|{{ $alertname }}|{{ $value }}]", NULL, 2, out,
                        sizeof(out));
    assert_string_equal(out, "[||2]");
}

static void cut_at_output_size(void **state)
{
    (void)state;
    char out[8];
    memset(out, 'x', sizeof(out));
    assert_int_equal(lbw_template_render("0123456789", NULL, 0, out, 5), 4);
    assert_string_equal(out, "0123");
    assert_int_equal(out[5], 'x');
    /* "é" is two bytes: with room for three, the second one is not split */
    assert_int_equal(lbw_template_render("ééé", NULL, 0, out, 4), 2);
    assert_string_equal(out, "é");
    assert_int_equal(lbw_template_render("{{ $value }}", NULL, 123456, out, 4), 3);
    assert_string_equal(out, "123");
    assert_int_equal(lbw_template_render("abc", NULL, 0, out, 1), 0);
    assert_string_equal(out, "");
    out[0] = 'x';
    assert_int_equal(lbw_template_render("abc", NULL, 0, out, 0), 0);
    assert_int_equal(out[0], 'x');
}

static void invalid_renders_as_text(void **state)
{
    (void)state;
    char out[128];
    lbw_template_render("a {{ foo }} b", NULL, 1, out, sizeof(out));
    assert_string_equal(out, "a {{ foo }} b");
    lbw_template_render("v={{ $value }} {{ $value", NULL, 1, out, sizeof(out));
    assert_string_equal(out, "v=1 {{ $value");
    lbw_template_render("x }} y", NULL, 1, out, sizeof(out));
    assert_string_equal(out, "x }} y");
}

/* Asserts tmpl is refused with exactly why at byte at. */
static void expect_error(const char *tmpl, const char *want, size_t want_at)
{
    char why[LBW_TEMPLATE_WHY_MAX] = "";
    size_t at = 9999;
    if (lbw_template_check(tmpl, why, sizeof(why), &at) == 0)
        fail_msg("accepted: %s", tmpl);
    if (strcmp(why, want) != 0 || at != want_at)
        fail_msg("template %s\n got:  %s at %zu\n want: %s at %zu", tmpl, why, at, want, want_at);
}

static void errors(void **state)
{
    (void)state;
    expect_error("ab {{ $value", "unclosed action: missing }}", 3);
    expect_error("{{ humanize", "unclosed action: missing }}", 0);
    expect_error("{{ printf \"%d\" ", "unclosed action: missing }}", 0);
    expect_error("a }} b", "}} outside an action", 2);
    expect_error("{{ $value }} }}", "}} outside an action", 13);
    expect_error("x{{  }}", "empty action", 1);
    expect_error("x{{ foo $value }}",
                 "unknown function \"foo\" (use humanize, humanizeDuration or printf)", 4);
    expect_error("{{ $val }}", "unknown variable \"$val\" (use $value, $alertname or $labels.NAME)",
                 3);
    expect_error("{{ $labels }}", "expected .NAME after $labels", 10);
    expect_error("{{ $labels. }}", "expected a label name after $labels.", 11);
    expect_error("{{ humanize $labels.x }}", "humanize takes $value", 12);
    expect_error("{{ humanizeDuration $alertname }}", "humanizeDuration takes $value", 20);
    expect_error("{{ humanize 3 }}", "expected $value, $alertname or $labels.NAME", 12);
    expect_error("{{ humanize$value }}", "unexpected '$' after the function name (expected a space)",
                 11);
    expect_error("{{ printf $value }}", "printf needs a quoted format string", 10);
    expect_error("{{ printf \"%.1f }}", "unterminated string", 10);
    expect_error("{{ printf \"%.1f\n\" $value }}", "unterminated string", 10);
    expect_error("{{ printf \"%x\" $value }}",
                 "unsupported printf verb (use %.Nf with N up to 20, %d or %s)", 11);
    expect_error("{{ printf \"%.21f\" $value }}",
                 "unsupported printf verb (use %.Nf with N up to 20, %d or %s)", 11);
    expect_error("{{ printf \"%5d\" $value }}",
                 "unsupported printf verb (use %.Nf with N up to 20, %d or %s)", 11);
    expect_error("{{ printf \"%d %s\" $value }}", "printf format has more than one verb", 14);
    expect_error("{{ printf \"abc %%\" $value }}", "printf format has no verb (use %.Nf, %d or %s)",
                 10);
    expect_error("{{ printf \"%d\" $labels.t }}", "%d formats a number: use $value", 15);
    expect_error("{{ printf \"%.1f\" $alertname }}", "%.Nf formats a number: use $value", 17);
    expect_error("{{ printf \"\\q%d\" $value }}", "unsupported escape in string (use \\\\, \\\" or \\n)",
                 11);
    expect_error("{{ printf \"%d\"$value }}",
                 "unexpected '$' after the format (expected a space and an argument)", 14);
    expect_error("{{ printf \"%d\" }}", "expected $value, $alertname or $labels.NAME", 15);
    expect_error("{{- $value }}", "trim markers ({{- and -}}) are not supported", 2);
    expect_error("{{ $value -}}", "trim markers ({{- and -}}) are not supported", 10);
    expect_error("{{ $value | humanize }}", "unexpected '|' in action (expected }})", 10);
    expect_error("{{ $value.x }}", "unexpected '.' in action (expected }})", 9);
    expect_error("{{ $value }", "unexpected '}' in action (expected }})", 10);
    expect_error("{{ {{ $value }}", "unexpected '{' in action", 3);
    expect_error("{{ /* note */ }}", "unexpected '/' in action", 3);
    expect_error("{{ \x01 }}", "unexpected byte 0x01 in action", 3);

    char *long_one = malloc(LBW_TEMPLATE_MAX + 2);
    assert_non_null(long_one);
    memset(long_one, 'a', LBW_TEMPLATE_MAX + 1);
    long_one[LBW_TEMPLATE_MAX + 1] = '\0';
    expect_error(long_one, "longer than 2048 bytes", LBW_TEMPLATE_MAX);
    long_one[LBW_TEMPLATE_MAX] = '\0';
    assert_int_equal(lbw_template_check(long_one, NULL, 0, NULL), 0);
    free(long_one);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(literal_text),
        cmocka_unit_test(variables),
        cmocka_unit_test(value_format),
        cmocka_unit_test(humanize),
        cmocka_unit_test(humanize_duration),
        cmocka_unit_test(printf_forms),
        cmocka_unit_test(no_labels),
        cmocka_unit_test(cut_at_output_size),
        cmocka_unit_test(invalid_renders_as_text),
        cmocka_unit_test(errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
