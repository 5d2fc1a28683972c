// SPDX-License-Identifier: MIT
#include "harness/files.hpp"

#include "common/base/error.hpp"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace forkd::test {

TempDir::TempDir() {
    char tmpl[] = "/tmp/forkd-t.XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error(system_error("mkdtemp").message());
    path_ = tmpl;
}

TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

void write_file(const std::string& path, const std::string& content) {
    std::ofstream out(path, std::ios::trunc | std::ios::binary);
    if (!out) throw std::runtime_error("cannot write " + path);
    out << content;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

} // namespace forkd::test
