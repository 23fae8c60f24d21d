/* The consumer test's program: an engine's smallest use of an installed or vendored vkmha. One forward pass of a
 * 2-head self-attention layer on the default Vulkan device through the C ABI, checked against the same math in C. */
#include <vkmha/vkmha.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { E = 8, H = 2, D = E / H, L = 5 };

static float weight(unsigned i, unsigned salt) { /* small deterministic values in [-0.5, 0.5) */
    return (float)((i * 2654435761u + salt * 40503u) % 1000u) / 1000.0f - 0.5f;
}

/* out[L][n] = x[L][k] * w[n][k]^T + b[n] (PyTorch's Linear). */
static void linear(const float* x, const float* w, const float* b, unsigned n, float* out) {
    for (unsigned t = 0; t < L; ++t)
        for (unsigned o = 0; o < n; ++o) {
            float acc = b[o];
            for (unsigned k = 0; k < E; ++k) acc += x[t * E + k] * w[o * E + k];
            out[t * n + o] = acc;
        }
}

static void reference(const float* x, const float* in_w, const float* in_b, const float* out_w, const float* out_b,
                      float* out) {
    float qkv[L * 3 * E], heads[L * E];
    linear(x, in_w, in_b, 3 * E, qkv);
    for (unsigned h = 0; h < H; ++h)
        for (unsigned i = 0; i < L; ++i) {
            float scores[L], max = -INFINITY, sum = 0.0f;
            for (unsigned j = 0; j < L; ++j) {
                float s = 0.0f;
                for (unsigned d = 0; d < D; ++d) s += qkv[i * 3 * E + h * D + d] * qkv[j * 3 * E + E + h * D + d];
                scores[j] = s / sqrtf((float)D);
                max = scores[j] > max ? scores[j] : max;
            }
            for (unsigned j = 0; j < L; ++j) sum += scores[j] = expf(scores[j] - max);
            for (unsigned d = 0; d < D; ++d) {
                float acc = 0.0f;
                for (unsigned j = 0; j < L; ++j) acc += scores[j] / sum * qkv[j * 3 * E + 2 * E + h * D + d];
                heads[i * E + h * D + d] = acc;
            }
        }
    linear(heads, out_w, out_b, E, out);
}

#define CHECK_VK(call)                                                                                                 \
    do {                                                                                                               \
        VkmhaResult r_ = (call);                                                                                       \
        if (r_ != VKMHA_SUCCESS) {                                                                                     \
            fprintf(stderr, "consumer: %s failed (%d): %s\n", #call, (int)r_, vk.getLastError());                      \
            return 1;                                                                                                  \
        }                                                                                                              \
    } while (0)

int main(void) {
    float in_w[3 * E * E], in_b[3 * E], out_w[E * E], out_b[E], x[L * E], expected[L * E], got[L * E];
    for (unsigned i = 0; i < 3 * E * E; ++i) in_w[i] = weight(i, 1);
    for (unsigned i = 0; i < 3 * E; ++i) in_b[i] = weight(i, 2);
    for (unsigned i = 0; i < E * E; ++i) out_w[i] = weight(i, 3);
    for (unsigned i = 0; i < E; ++i) out_b[i] = weight(i, 4);
    for (unsigned i = 0; i < L * E; ++i) x[i] = 2.0f * weight(i, 5);
    reference(x, in_w, in_b, out_w, out_b, expected);

    VkmhaProcTable vk;
    memset(&vk, 0, sizeof vk);
    if (vkmhaGetProcTable(VKMHA_HEADER_VERSION, &vk, sizeof vk) != VKMHA_SUCCESS) {
        fprintf(stderr, "consumer: vkmhaGetProcTable refused header version %u\n", (unsigned)VKMHA_HEADER_VERSION);
        return 1;
    }
    VkmhaContextCreateInfo context_info = {.sType = VKMHA_STRUCTURE_TYPE_CONTEXT_CREATE_INFO};
    VkmhaContext context = NULL;
    CHECK_VK(vk.createContext(&context_info, &context));

    const VkmhaTensor tensors[] = {
        {"in_proj_weight", VKMHA_DATA_TYPE_F32, 2, {3 * E, E}, in_w},
        {"in_proj_bias", VKMHA_DATA_TYPE_F32, 1, {3 * E}, in_b},
        {"out_proj.weight", VKMHA_DATA_TYPE_F32, 2, {E, E}, out_w},
        {"out_proj.bias", VKMHA_DATA_TYPE_F32, 1, {E}, out_b},
    };
    VkmhaModelCreateInfo model_info = {.sType = VKMHA_STRUCTURE_TYPE_MODEL_CREATE_INFO};
    model_info.numHeads = H;
    model_info.tensorCount = 4;
    model_info.pTensors = tensors;
    VkmhaModel model = NULL;
    CHECK_VK(vk.createModel(context, &model_info, &model));

    VkmhaSessionCreateInfo session_info = {.sType = VKMHA_STRUCTURE_TYPE_SESSION_CREATE_INFO};
    session_info.maxBatch = 1;
    session_info.maxQueryLength = L;
    session_info.maxKeyLength = L;
    session_info.hostIo = VK_TRUE;
    VkmhaSession session = NULL;
    CHECK_VK(vk.createSession(model, &session_info, &session));

    VkmhaHostSubmitInfo submit = {.sType = VKMHA_STRUCTURE_TYPE_HOST_SUBMIT_INFO};
    submit.batch = 1;
    submit.queryLength = L;
    submit.keyLength = L;
    submit.pQuery = x;
    uint64_t done = 0;
    CHECK_VK(vk.submit(session, &submit, &done));
    CHECK_VK(vk.wait(session, done, UINT64_MAX));
    CHECK_VK(vk.readOutputs(session, done, got, L * E, NULL, 0));

    VkmhaContextProperties properties = {.sType = VKMHA_STRUCTURE_TYPE_CONTEXT_PROPERTIES};
    CHECK_VK(vk.getContextProperties(context, &properties));
    vk.destroySession(session);
    vk.destroyModel(model);
    vk.destroyContext(context);

    float worst = 0.0f;
    for (unsigned i = 0; i < L * E; ++i) {
        float error = fabsf(got[i] - expected[i]);
        worst = error > worst ? error : worst;
    }
    printf("consumer: vkmha %u.%u on %s: max |gpu - cpu| = %.2e, %llu validation messages\n",
           (unsigned)VKMHA_API_VERSION_MAJOR(vk.apiVersion), (unsigned)VKMHA_API_VERSION_MINOR(vk.apiVersion),
           properties.deviceName, (double)worst, (unsigned long long)properties.validationMessageCount);
    return worst <= 1e-4f && properties.validationMessageCount == 0 ? 0 : 1;
}
