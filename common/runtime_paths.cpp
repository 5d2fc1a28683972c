// SPDX-License-Identifier: MIT
// Default run-time paths (see the contract): root uses /run/forkd, other users their
// XDG runtime directory, else a per-uid directory under /tmp.
#include "common/runtime_paths.hpp"

#include <unistd.h>
#include <cstdlib>

namespace forkd {
namespace {

std::string base_name(const std::optional<std::string>& instance) {
    return instance ? *instance : std::string("forkd");
}

} // namespace

std::string runtime_dir() {
    if (geteuid() == 0) return "/run/forkd";
    const char* xdg = std::getenv("XDG_RUNTIME_DIR");
    if (xdg && xdg[0] == '/') return std::string(xdg) + "/forkd";
    return "/tmp/forkd-" + std::to_string(geteuid());
}

std::string default_pidfile(const std::optional<std::string>& instance) {
    return runtime_dir() + "/" + base_name(instance) + ".pid";
}

std::string default_control_socket(const std::optional<std::string>& instance) {
    return runtime_dir() + "/" + base_name(instance) + ".sock";
}

std::string client_control_socket(const std::optional<std::string>& instance) {
    const std::string own = default_control_socket(instance);
    if (geteuid() == 0 || access(own.c_str(), F_OK) == 0) return own;
    const std::string system = "/run/forkd/" + base_name(instance) + ".sock";
    return access(system.c_str(), F_OK) == 0 ? system : own;
}

std::string read_only_control_socket(const std::string& control_socket) {
    const std::string suffix = ".sock";
    if (control_socket.size() > suffix.size() && control_socket.ends_with(suffix))
        return control_socket.substr(0, control_socket.size() - suffix.size()) + ".ro.sock";
    return control_socket + ".ro";
}

std::optional<std::string> default_config_file(const std::optional<std::string>& instance) {
    if (instance) return "/etc/forkd/" + *instance + ".conf";
    if (geteuid() == 0) return std::string("/etc/forkd/forkd.conf");
    return std::nullopt;
}

} // namespace forkd
