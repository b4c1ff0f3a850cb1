/* fuzz_promtext.c - libFuzzer target for the Prometheus text parser and the emission step.
 * Any input must either parse, every sample having valid and distinct names, a family that
 * its name starts with, and labels that survive a series key round trip; or fail with a line
 * and column inside the input and a reason. Emitting everything must agree with the parse:
 * nothing emitted on failure, otherwise every sample emitted, skipped or rejected exactly
 * once, every key canonical and carrying the emitter's base labels. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "probes/promtext.h"

struct seen {
    uint64_t samples;
};

static void check_labels_round_trip(const struct lbw_promtext_sample *s)
{
    char key[LBW_KEY_MAX];
    struct lbw_key_parsed p;
    int n = lbw_key_build(key, sizeof(key), s->name, s->labels, s->nlabels);
    if (n < 0)
        return; /* too long for a key: the emitter rejects it */
    if (lbw_key_parse(key, (size_t)n, &p) != 0 || p.nlabels != s->nlabels)
        abort();
    for (size_t i = 0; i < s->nlabels; i++) {
        const char *v = lbw_key_label(&p, s->labels[i].name);
        if (!v || strcmp(v, s->labels[i].value) != 0)
            abort();
    }
}

static int on_sample(void *arg, const struct lbw_promtext_sample *s)
{
    struct seen *seen = arg;
    if (!lbw_metric_name_valid(s->name) || strncmp(s->name, s->family, strlen(s->family)) != 0 ||
        s->nlabels > LBW_PROMTEXT_LABELS_MAX || s->line == 0 ||
        (unsigned)s->type > LBW_PROMTEXT_SUMMARY)
        abort();
    for (size_t i = 0; i < s->nlabels; i++) {
        if (!lbw_label_name_valid(s->labels[i].name) || !s->labels[i].value ||
            strcmp(s->labels[i].name, "__name__") == 0)
            abort();
        for (size_t j = 0; j < i; j++)
            if (strcmp(s->labels[i].name, s->labels[j].name) == 0)
                abort();
    }
    if (s->help)
        (void)strlen(s->help);
    check_labels_round_trip(s);
    seen->samples++;
    return 0;
}

static void check_error(const uint8_t *data, size_t size, const struct lbw_promtext_error *err)
{
    size_t lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    if (err->line == 0 || err->line > lines || err->column == 0 ||
        err->column > LBW_PROMTEXT_LINE_MAX + 1 || err->reason[0] == '\0')
        abort();
}

static void on_key(void *arg, const char *key, int64_t ts, double v)
{
    struct lbw_key_parsed p;
    (void)v;
    if (ts != 42 || lbw_key_parse(key, strlen(key), &p) != 0)
        abort();
    const char *target = lbw_key_label(&p, "target"), *vantage = lbw_key_label(&p, "vantage");
    if (!target || strcmp(target, "t") != 0 || !vantage || strcmp(vantage, "v") != 0)
        abort();
    (*(uint64_t *)arg)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    struct seen seen = {0};
    struct lbw_promtext_error err;
    int rc = lbw_promtext_parse(text, size, on_sample, &seen, &err);
    if (rc == -1)
        check_error(data, size, &err);
    else if (rc != 0)
        abort();

    static const char *const patterns[] = {"*"};
    struct lbw_promtext_allow allow;
    if (lbw_promtext_allow_init(&allow, patterns, 1, NULL, 0) != 0)
        abort();
    struct lbw_label base[] = {{"target", "t"}, {"vantage", "v"}, {"probe", "scrape"}};
    uint64_t keys = 0;
    struct lbw_emitter e = {.fn = on_key, .arg = &keys, .base = base, .nbase = 3, .ts_ms = 42};
    struct lbw_promtext_stats st;
    int erc = lbw_promtext_emit_allowed(text, size, &allow, &e, &st);
    lbw_promtext_allow_free(&allow);
    if (erc != (rc == 0 ? 0 : -1))
        abort();
    if (erc != 0 && (keys != 0 || st.error.line != err.line || st.error.column != err.column))
        abort();
    if (erc == 0 && (st.emitted != keys || st.skipped != 0 ||
                     st.emitted + st.rejected != seen.samples))
        abort();
    return 0;
}
