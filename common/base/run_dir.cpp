// SPDX-License-Identifier: MIT
#include "common/base/run_dir.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace forkd {
namespace {

std::string octal_mode(mode_t mode) {
    char text[8];
    std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
    return text;
}

// mkdir -p with mode 0755 for every missing component of DIR.
Status create_dirs(const std::string& dir) {
    for (std::size_t pos = dir.find('/', 1);; pos = dir.find('/', pos + 1)) {
        const std::string prefix = dir.substr(0, pos);
        if (::mkdir(prefix.c_str(), 0755) == 0)
            ::chmod(prefix.c_str(), 0755);  // the umask must not narrow it
        else if (errno != EEXIST)
            return system_error("cannot create directory " + prefix);
        if (pos == std::string::npos) break;
    }
    return Status::success();
}

} // namespace

std::string run_dir_refusal(const struct stat& st, uid_t euid) {
    if (!S_ISDIR(st.st_mode)) return "is not a directory";
    if (st.st_uid != euid && st.st_uid != 0)
        return "is owned by uid " + std::to_string(st.st_uid) + ", not by forkd's uid " +
               std::to_string(euid) + " or root";
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return "is writable by " + std::string(st.st_mode & S_IWOTH ? "others" : "its group") +
               " (mode " + octal_mode(st.st_mode) + ")";
    return "";
}

Result<RunPath> open_run_path(const std::string& path, CreateMissing create) {
    const auto slash = path.rfind('/');
    RunPath run;
    run.path = path;
    run.name = slash == std::string::npos ? path : path.substr(slash + 1);
    run.dir_path = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
    if (run.name.empty() || run.name == "." || run.name == "..")
        return Error{EINVAL, "run file " + path + " has no file name"};
    if (create == CreateMissing::yes && run.dir_path != "/" && run.dir_path != ".")
        if (Status made = create_dirs(run.dir_path); !made) return made.error();
    run.dir.reset(::open(run.dir_path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!run.dir) {
        if (errno == ELOOP || errno == ENOTDIR)
            return Error{errno, "run directory " + run.dir_path + " is a symbolic link or not a directory"};
        return system_error("cannot open run directory " + run.dir_path);
    }
    struct stat st {};
    if (::fstat(run.dir.get(), &st) < 0) return system_error("cannot inspect run directory " + run.dir_path);
    if (std::string why = run_dir_refusal(st, ::geteuid()); !why.empty())
        return failure("run directory " + run.dir_path + " " + why + ": refusing to keep " +
                       run.name + " there");
    return run;
}

} // namespace forkd
