// Score modifiers of real model families, shared by every kernel that computes or normalizes scores, so the fused,
// split-K, unfused and need_weights paths apply the same math (docs/DESIGN.md, "The math").
#ifndef VKMHA_COMMON_SCORE_MODIFIERS_GLSL
#define VKMHA_COMMON_SCORE_MODIFIERS_GLSL

#include "common/mask.glsl"

// Logit soft-capping (Gemma 2): c * tanh(s / c) on the scaled score; c == 0 leaves it unchanged.
float soft_cap(float s, float c)
{
    return c > 0.0 ? c * tanh(s / c) : s;
}

// ALiBi's slope for head h of H: 2^(-8(h+1)/n) with n the largest power of two <= H; heads past n take every other
// slope of 2n (Bloom's rule), as the host's alibi_slope().
float alibi_slope(uint h, uint heads)
{
    const uint n = 1u << uint(findMSB(heads));
    return h < n ? exp2(-8.0 * float(h + 1u) / float(n)) : exp2(-4.0 * float(2u * (h - n) + 1u) / float(n));
}

// Folds a sink logit (gpt-oss: joins the softmax denominator, contributes no value) into a row's running max m and
// sum l: returns the factor that rescales the row's accumulators and sum to the new max, updates m and l.
float fold_sink(inout float m, inout float l, float sink)
{
    const float m_new = max(m, sink);
    const float alpha = m == neg_inf() ? 0.0 : exp(m - m_new);
    l = l * alpha + exp(sink - m_new);
    m = m_new;
    return alpha;
}

#endif
