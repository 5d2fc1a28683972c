// SPDX-License-Identifier: MIT
#pragma once
// For unit tests: sends the log (stderr) to a temp file for the lifetime of the object.
#include "common/base/unique_fd.hpp"
#include "common/log.hpp"

#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

namespace forkd::test {

class CapturedLog {
public:
    CapturedLog() {
        char path[] = "/tmp/forkd-stderr-XXXXXX";
        file_.reset(::mkstemp(path));
        path_ = path;
        saved_.reset(::dup(2));
        ::dup2(file_.get(), 2);
        log::use_stderr();
    }
    ~CapturedLog() {
        ::dup2(saved_.get(), 2);
        ::unlink(path_.c_str());
    }
    CapturedLog(const CapturedLog&) = delete;
    CapturedLog& operator=(const CapturedLog&) = delete;

    // The lines logged so far that contain needle (all of them by default).
    std::vector<std::string> lines(const std::string& needle = "") const {
        std::ifstream in(path_);
        std::vector<std::string> found;
        for (std::string line; std::getline(in, line);)
            if (line.find(needle) != std::string::npos) found.push_back(line);
        return found;
    }

private:
    UniqueFd file_, saved_;
    std::string path_;
};

} // namespace forkd::test
