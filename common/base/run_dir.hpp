// SPDX-License-Identifier: MIT
#pragma once
// The directory that holds a run file (pidfile, control socket, unix: listener), checked once
// and then used through its descriptor, so nobody can swap a file in it between the check and
// the use. A directory is trusted when it is owned by forkd's euid or by root and is writable
// by neither its group nor others: then only forkd (or root) can create, rename or remove names
// in it, and a name found there (a symbolic link, a socket) was put there by one of them. A
// sticky world-writable directory such as /tmp is refused too: anyone may create names in it
// (a planted forkd.pid symlink), so run files go into a directory of their own inside it.
#include "common/base/error.hpp"
#include "common/base/unique_fd.hpp"

#include <sys/stat.h>
#include <sys/types.h>
#include <string>

namespace forkd {

// A run file's directory, open (O_DIRECTORY|O_NOFOLLOW|O_CLOEXEC) and checked, and its name in it.
struct RunPath {
    UniqueFd dir;
    std::string dir_path;   // for messages
    std::string name;       // the last component of the path
    std::string path;       // as configured
};

enum class CreateMissing { no, yes };

// Why DIR (described by ST) may not hold forkd's run files, or "" when it may.
std::string run_dir_refusal(const struct stat& st, uid_t euid);

// Splits PATH into its directory and name, creates the missing directories (mode 0755, the umask
// does not narrow them) when asked, opens the directory without following a symbolic link as its
// last component and checks it (run_dir_refusal). A refusal is failure("run directory D is ...: refusing to keep
// NAME there"); an unusable PATH (no name, a symlink as the directory) an errno with context.
Result<RunPath> open_run_path(const std::string& path, CreateMissing create);

} // namespace forkd
