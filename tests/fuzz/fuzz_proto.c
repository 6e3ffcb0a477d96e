/* libFuzzer harness: every proto/ decoder on arbitrary bytes. A decoder may
 * refuse the input; it must never crash, read out of bounds, leak, or
 * allocate more than the input can justify (-rss_limit_mb catches that). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "proto/envelope.h"
#include "proto/k8s.h"
#include "proto/model.h"
#include "proto/status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    proto_envelope env;
    if (proto_envelope_decode(&env, data, size) == 0)
        proto_envelope_clear(&env);

    proto_k8s_object obj;
    proto_k8s_decode(&obj, data, size);
    proto_k8s_object_clear(&obj);

    proto_model *model = NULL;
    if (proto_model_decode(&model, data, size) == 0)
        proto_model_destroy(&model);

    proto_status status;
    if (proto_status_decode(&status, data, size) == 0)
        proto_status_clear(&status);

    proto_eos eos;
    proto_eos_decode(&eos, data, size);
    return 0;
}
