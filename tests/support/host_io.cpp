// Own-mode runs through host I/O (submit, wait, readOutputs); see host_io.h.
#include "support/host_io.h"

#include "support/call_infos.h"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <vector>

namespace vkmha::test {

void run_and_check(VkmhaSession session, const HostModel& m, const RunInputs& in, const std::string& what,
                   ElementwiseTolerance tol) {
    const VkmhaHostSubmitInfo hi = host_submit_info(in);
    uint64_t value = 0;
    REQUIRE_VKMHA(api().submit(session, &hi, &value));
    CHECK(value > 0);
    REQUIRE_VKMHA(api().wait(session, value, UINT64_MAX));
    std::vector<float> output(output_count(m.config, in), std::nanf(""));
    std::vector<float> weights(weights_count(m.config, in), std::nanf(""));
    REQUIRE_VKMHA(api().readOutputs(session, value, output.data(), output.size(),
                                    weights.empty() ? nullptr : weights.data(), weights.size()));
    const vkmha::AttentionOutputs ref = reference(m, in);
    check_matches(output.data(), ref.output, what + " output", tol);
    if (in.options.need_weights) {
        REQUIRE(ref.weights.size() == weights.size());
        check_matches(weights.data(), ref.weights, what + " weights", tol);
    }
}

OwnSetup::OwnSetup(const ModelSpec& spec, const VkmhaSessionCreateInfo& si) : host(make_model(spec)) {
    const VkmhaContextCreateInfo ci = own_context_info(&log);
    REQUIRE_VKMHA(api().createContext(&ci, context.out()));
    create_model(context.get(), host, model);
    REQUIRE_VKMHA(api().createSession(model.get(), &si, session.out()));
}

void OwnSetup::check_still_works(const std::string& what) {
    AttentionOptions o;
    const bool cross = host.config.kdim != host.config.embed_dim || host.config.vdim != host.config.embed_dim;
    const RunInputs in = make_inputs(host.config, {1, 3, 3}, o, cross, cross, 99);
    run_and_check(session.get(), host, in, what);
    check_no_validation_messages(context.get(), log);
}

} // namespace vkmha::test
