// SPDX-License-Identifier: MIT
#pragma once
// Temp dirs and the files the tests put in them (configs, pidfiles, logs).
#include <string>

namespace forkd::test {

// A short private directory under /tmp (UNIX socket paths must stay under 108 bytes).
class TempDir {
public:
    TempDir();
    ~TempDir();  // removes the tree
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }
    std::string file(const std::string& name) const { return path_ + "/" + name; }
private:
    std::string path_;
};

void write_file(const std::string& path, const std::string& content);
std::string read_file(const std::string& path);  // "" if it cannot be read

} // namespace forkd::test
