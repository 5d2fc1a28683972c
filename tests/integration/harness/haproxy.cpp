// SPDX-License-Identifier: MIT
#include "harness/haproxy.hpp"

#include "harness/child_process.hpp"
#include "harness/sockets.hpp"

#include <signal.h>
#include <unistd.h>

#include <sstream>
#include <vector>

namespace forkd::test {

std::string source_file(const std::string& relative) {
    return read_file(std::string(FORKD_SOURCE_DIR) + "/" + relative);
}

std::string haproxy_config_from_example(const std::map<std::string, std::string>& values) {
    std::string text = source_file("examples/haproxy.cfg");
    for (const auto& [name, value] : values) {
        const std::string placeholder = "@" + name + "@";
        for (std::size_t at; (at = text.find(placeholder)) != std::string::npos;)
            text.replace(at, placeholder.size(), value);
    }
    // Only the comment lines may still hold placeholders (they are prose), and the stats
    // socket's, which Haproxy fills in with its own.
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);)
        if (!line.starts_with("#") && line.find('@') != std::string::npos &&
            line.find("@STATS_SOCKET@") == std::string::npos)
            return "";
    return text;
}

bool Haproxy::available() { return access("/usr/sbin/haproxy", X_OK) == 0; }

Haproxy::Haproxy(const std::string& config) {
    std::string text = config;
    const std::string placeholder = "@STATS_SOCKET@";
    if (auto at = text.find(placeholder); at != std::string::npos)
        text.replace(at, placeholder.size(), stats_socket());
    write_file(dir_.file("haproxy.cfg"), text);
    UniqueFd out = open_output(dir_.file("haproxy.log"));
    // -db: foreground, no fork; -W not used: one process, its pid is the one we hold.
    pid_ = spawn(ExecPlan({"/usr/sbin/haproxy", "-db", "-f", dir_.file("haproxy.cfg")}, build_env({})),
                 {-1, out.get(), out.get(), std::nullopt});
    ready_ = eventually([&] { return !command("show info").empty() || try_reap(pid_); }, 10s) &&
             !command("show info").empty();
}

Haproxy::~Haproxy() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    if (!reap_within(pid_, 5s)) {
        ::kill(pid_, SIGKILL);
        reap_within(pid_, 5s);
    }
}

std::string Haproxy::command(const std::string& line) const {
    UniqueFd socket = connect_unix(stats_socket());
    if (!socket || !send_all(socket.get(), line + "\n")) return "";
    return read_until_eof(socket.get(), 5s);
}

std::string Haproxy::server_status(const std::string& server) const { return server_field(server, "status"); }

std::string Haproxy::server_field(const std::string& server, const std::string& column) const {
    std::istringstream csv(command("show stat"));
    std::string header;
    if (!std::getline(csv, header) || !header.starts_with("# ")) return "";
    auto split = [](const std::string& line) {
        std::vector<std::string> fields;
        std::istringstream in(line);
        for (std::string field; std::getline(in, field, ',');) fields.push_back(field);
        return fields;
    };
    const auto names = split(header.substr(2));
    std::size_t status = 0;
    while (status < names.size() && names[status] != column) ++status;
    for (std::string row; std::getline(csv, row);) {
        const auto fields = split(row);
        if (fields.size() > status && fields.size() > 1 && fields[1] == server) return fields[status];
    }
    return "";
}

} // namespace forkd::test
