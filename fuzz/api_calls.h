// The C API fuzzer's world: one own-mode context and a valid model made once, the handles an input has made so far,
// honest host memory for every pointer the header says must hold data, and one vkmha call per step chosen and
// filled from the input's bytes (api_calls.cpp).
#pragma once

#include "fuzz_input.h"

#include "vkmha/vkmha.h"

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace vkmha::fuzz {

class World {
  public:
    static World& instance();
    bool ready() const { return m_context != nullptr && m_model != nullptr; }
    const std::string& why() const { return m_why; }

    // One call, chosen and filled from `in`.
    void call(FuzzInput& in);
    // Destroys what this input made, children first (the order the header asks for).
    void destroy_all();

  private:
    World();
    // Handles by index from the input: one made earlier, the world's own, or NULL.
    VkmhaModel model(FuzzInput& in) const;
    VkmhaSession session(FuzzInput& in) const;
    // The model a session picked from this input's was made for (the valid model otherwise).
    VkmhaModel model_of(VkmhaSession) const;
    uint64_t slots_of(VkmhaKvCache) const;
    VkmhaKvCache cache(FuzzInput& in) const;
    VkmhaPrefillJob job(FuzzInput& in) const;
    // s.sType: mostly `right`, sometimes any 32 bits (stored as C would: the enum cannot hold every value in C++).
    template <typename T> void set_stype(FuzzInput& in, T& s, VkmhaStructureType right) const {
        const uint8_t b = in.byte();
        const uint32_t type = b < 224 ? uint32_t(right) : b < 240 ? b % 24 : in.u32();
        std::memcpy(&s.sType, &type, sizeof type);
    }
    // NULL, or a chained struct of a random (possibly known) sType.
    const void* chain(FuzzInput& in);
    // `count` elements of `bytes` each fit in the honest pool.
    bool fits(uint64_t count, uint64_t bytes) const;

    void create_context(FuzzInput&);
    void create_model(FuzzInput&);
    void create_session(FuzzInput&);
    void create_cache(FuzzInput&);
    void create_job(FuzzInput&);
    void submit(FuzzInput&);
    void submit_cached(FuzzInput&);
    void submit_qkv(FuzzInput&);
    void wait_and_read(FuzzInput&);
    void record(FuzzInput&);
    void cache_calls(FuzzInput&);
    void queries(FuzzInput&);
    void proc_table(FuzzInput&);
    void destroy_one(FuzzInput&);

    VkmhaProcTable m_api{};
    VkmhaContext m_context = nullptr;
    VkmhaModel m_model = nullptr;          // a valid GQA model (E 24, H 3, G 1), never destroyed
    VkmhaModel m_attention_only = nullptr; // H 3, G 1, D 8 without projections
    std::string m_why;
    std::vector<uint8_t> m_pipeline_cache;
    // Zeroed host memory that every pointer vkmha reads or writes points into (calloc: untouched pages cost nothing).
    float* m_pool = nullptr;
    static constexpr uint64_t kPoolBytes = 256ull << 20;
    // Objects made larger than this are not created (they would be valid, just slow): their memory queries run.
    static constexpr uint64_t kMaxObjectBytes = 64ull << 20;

    std::vector<VkmhaModel> m_models;
    std::vector<VkmhaSession> m_sessions;
    std::vector<VkmhaModel> m_session_models; // each session's model
    std::vector<VkmhaKvCache> m_caches;
    std::vector<uint64_t> m_cache_slots; // each cache's sequences x capacity
    std::vector<VkmhaPrefillJob> m_jobs;
    std::vector<uint64_t> m_values; // timeline values submits returned
    // Chained structs live until the next call.
    struct AnyStruct {
        uint32_t sType;
        const void* pNext;
        uint8_t payload[256];
    };
    AnyStruct m_chained{};
};

} // namespace vkmha::fuzz
