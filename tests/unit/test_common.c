/* The small common modules: capped buffers, backoff, log levels. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "common/backoff.h"
#include "common/base64.h"
#include "common/dynbuf.h"
#include "common/error.h"
#include "common/log.h"

static void test_dynbuf_grows_and_stays_nul_terminated(void **state)
{
    (void)state;
    dynbuf b;
    dynbuf_init(&b, 1 << 20);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(dynbuf_append(&b, "abc", 3), KV_OK);
    assert_int_equal(b.len, 3000);
    assert_int_equal(b.data[b.len], '\0');
    assert_memory_equal(b.data + 2997, "abc", 3);
    dynbuf_free(&b);
    assert_null(b.data);
}

static void test_dynbuf_refuses_to_pass_its_maximum_and_keeps_content(void **state)
{
    (void)state;
    dynbuf b;
    dynbuf_init(&b, 8);
    assert_int_equal(dynbuf_append(&b, "12345678", 8), KV_OK);
    assert_int_equal(dynbuf_append(&b, "9", 1), KV_ERR_TOO_LARGE);
    assert_string_equal(b.data, "12345678");
    assert_true(b.cap <= 9);
    dynbuf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_int_equal(dynbuf_append(&b, "x", 1), KV_OK);
    assert_string_equal(b.data, "x");
    /* A length that would overflow size_t arithmetic is refused too. */
    assert_int_equal(dynbuf_append(&b, "y", SIZE_MAX), KV_ERR_TOO_LARGE);
    dynbuf_free(&b);
}

static void test_backoff_doubles_within_jitter_up_to_its_cap(void **state)
{
    (void)state;
    backoff_t b;
    backoff_init(&b, 100, 1000);
    int64_t expected[] = {100, 200, 400, 800, 1000, 1000};
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        int64_t delay = backoff_next_ms(&b);
        assert_true(delay >= expected[i] / 2 && delay <= expected[i]);
    }
    backoff_reset(&b);
    assert_true(backoff_next_ms(&b) <= 100);
}

static void test_strict_base64_wants_padding_and_skips_only_line_breaks(void **state)
{
    (void)state;
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(base64_decode(&out, &len, "Zm9v\r\nYmE=", 10, true), KV_OK);
    assert_string_equal(out, "fooba");
    free(out);
    static const char *const bad[] = {"Zm8", "Zm9v YmE=", "Zg=a", "Zg===", "Zm9v\tYmE="};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(base64_decode(&out, &len, bad[i], strlen(bad[i]), true), KV_ERR_INVALID);
        assert_null(out);
    }
    /* Lenient (kubeconfig): the same unpadded and spaced input is fine. */
    assert_int_equal(base64_decode(&out, &len, "Zm9v YmE", 8, false), KV_OK);
    assert_string_equal(out, "fooba");
    free(out);
}

static void test_log_levels_parse_by_name(void **state)
{
    (void)state;
    assert_int_equal(log_level_parse("debug"), LOG_DEBUG);
    assert_int_equal(log_level_parse("INFO"), LOG_INFO);
    assert_int_equal(log_level_parse("Warning"), LOG_WARN);
    assert_int_equal(log_level_parse("ERROR"), LOG_ERROR);
    assert_int_equal(log_level_parse("loud"), -1);
    assert_int_equal(log_level_parse(NULL), -1);
    assert_string_equal(kv_strerror(KV_ERR_TOO_LARGE), "input too large");
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dynbuf_grows_and_stays_nul_terminated),
        cmocka_unit_test(test_dynbuf_refuses_to_pass_its_maximum_and_keeps_content),
        cmocka_unit_test(test_backoff_doubles_within_jitter_up_to_its_cap),
        cmocka_unit_test(test_strict_base64_wants_padding_and_skips_only_line_breaks),
        cmocka_unit_test(test_log_levels_parse_by_name),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
