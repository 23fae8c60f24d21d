// libvkmha.so as a plugin an engine loads and unloads: dlclose must unmap it (no STB_GNU_UNIQUE symbol, nothing
// that marks it NODELETE), and its dynamic symbol table must hold vkmhaGetProcTable and nothing else of its own.
#include "vkmha/vkmha.h"

#include <doctest/doctest.h>

#include <dlfcn.h>
#include <elf.h>
#include <spawn.h>
#include <sys/wait.h>

#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern char** environ;

namespace {

const char* const k_unload_test = "unload: dlclose unmaps libvkmha.so after vkmhaGetProcTable";

std::string library_real_path() {
    char buf[PATH_MAX];
    REQUIRE_MESSAGE(realpath(VKMHA_LIBRARY_PATH, buf) != nullptr, "no library at " VKMHA_LIBRARY_PATH);
    return buf;
}

bool mapped(const std::string& path) {
    std::ifstream maps("/proc/self/maps");
    std::string line;
    while (std::getline(maps, line))
        if (line.size() >= path.size() && line.compare(line.size() - path.size(), path.size(), path) == 0) return true;
    return false;
}

bool loaded() {
    void* h = dlopen(VKMHA_LIBRARY_PATH, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
    if (h) dlclose(h); // NOLOAD took a reference: give it back
    return h != nullptr;
}

// Defined GLOBAL, WEAK and GNU_UNIQUE symbols of the file's .dynsym, read from the ELF itself (no readelf needed).
struct DynamicSymbol {
    std::string name;
    unsigned bind;
};

std::vector<DynamicSymbol> defined_dynamic_symbols(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    REQUIRE(f);
    const std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    REQUIRE(bytes.size() >= sizeof(Elf64_Ehdr));
    REQUIRE(std::memcmp(bytes.data(), ELFMAG, SELFMAG) == 0);
    REQUIRE(bytes[EI_CLASS] == ELFCLASS64);
    Elf64_Ehdr eh;
    std::memcpy(&eh, bytes.data(), sizeof eh);
    REQUIRE(eh.e_shentsize == sizeof(Elf64_Shdr));
    REQUIRE(eh.e_shoff + std::uint64_t{eh.e_shnum} * sizeof(Elf64_Shdr) <= bytes.size());
    std::vector<Elf64_Shdr> sections(eh.e_shnum);
    std::memcpy(sections.data(), bytes.data() + eh.e_shoff, sections.size() * sizeof(Elf64_Shdr));
    std::vector<DynamicSymbol> out;
    bool found_dynsym = false;
    for (const Elf64_Shdr& sh : sections) {
        if (sh.sh_type != SHT_DYNSYM) continue;
        found_dynsym = true;
        REQUIRE(sh.sh_link < sections.size());
        const Elf64_Shdr& strtab = sections[sh.sh_link];
        REQUIRE(sh.sh_offset + sh.sh_size <= bytes.size());
        REQUIRE(strtab.sh_offset + strtab.sh_size <= bytes.size());
        for (std::uint64_t i = 0; i < sh.sh_size / sizeof(Elf64_Sym); ++i) {
            Elf64_Sym sym;
            std::memcpy(&sym, bytes.data() + sh.sh_offset + i * sizeof(Elf64_Sym), sizeof sym);
            const unsigned bind = ELF64_ST_BIND(sym.st_info);
            if (sym.st_shndx == SHN_UNDEF || bind == STB_LOCAL) continue;
            REQUIRE(sym.st_name < strtab.sh_size);
            out.push_back({std::string(bytes.data() + strtab.sh_offset + sym.st_name), bind});
        }
    }
    REQUIRE_MESSAGE(found_dynsym, path << " has no .dynsym");
    return out;
}

} // namespace

TEST_SUITE("plugin") {

    TEST_CASE(k_unload_test) {
        const std::string path = library_real_path();
        if (loaded()) {
            // Another test of this process holds the library (and must, until exit): check in a fresh process that
            // runs only this test.
            const std::string filter = std::string("--test-case=") + k_unload_test;
            char* argv[] = {const_cast<char*>("/proc/self/exe"), const_cast<char*>(filter.c_str()), nullptr};
            pid_t pid = 0;
            REQUIRE(posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv, environ) == 0);
            int status = 0;
            REQUIRE(waitpid(pid, &status, 0) == pid);
            REQUIRE(WIFEXITED(status));
            CHECK_MESSAGE(WEXITSTATUS(status) == 0, "the unload check failed in a fresh process (its output is above)");
            return;
        }
        REQUIRE_FALSE(mapped(path));
        for (int round = 0; round < 2; ++round) { // a second load and unload works as the first did
            CAPTURE(round);
            void* handle = dlopen(VKMHA_LIBRARY_PATH, RTLD_NOW | RTLD_LOCAL);
            REQUIRE_MESSAGE(handle != nullptr, dlerror());
            auto get = reinterpret_cast<PFN_vkmhaGetProcTable>(dlsym(handle, "vkmhaGetProcTable"));
            REQUIRE((get != nullptr));
            VkmhaProcTable table{};
            REQUIRE(get(VKMHA_HEADER_VERSION, &table, sizeof table) == VKMHA_SUCCESS);
            CHECK(mapped(path));
            REQUIRE(dlclose(handle) == 0);
            CHECK_MESSAGE(!loaded(), "dlclose left libvkmha.so loaded (NODELETE: a STB_GNU_UNIQUE symbol?)");
            CHECK_MESSAGE(!mapped(path), path << " is still in /proc/self/maps after dlclose");
        }
    }

    TEST_CASE("exports: the only defined dynamic symbol of libvkmha.so is vkmhaGetProcTable") {
        const std::string path = library_real_path();
        const std::vector<DynamicSymbol> symbols = defined_dynamic_symbols(path);
        std::string names;
        for (const DynamicSymbol& s : symbols)
            names += s.name + (s.bind == STB_GNU_UNIQUE ? " (UNIQUE)" : s.bind == STB_WEAK ? " (WEAK)" : "") + "\n";
        CAPTURE(names);
        for (const DynamicSymbol& s : symbols)
            CHECK_MESSAGE(s.bind != STB_GNU_UNIQUE, s.name << " is STB_GNU_UNIQUE: dlclose cannot unload the library");
        REQUIRE(symbols.size() == 1);
        CHECK(symbols[0].name == "vkmhaGetProcTable");
        CHECK(symbols[0].bind == STB_GLOBAL);
    }
}
