// SPDX-License-Identifier: MIT
// The control server and dispatcher with a fake daemon: authorisation, audit, and the socket
// rules (stale path, garbage, oversize, slow clients, client limit, stop clients kept open).
#include "common/control/control_protocol.hpp"
#include "daemon/control/control_dispatch.hpp"
#include "daemon/control/control_server.hpp"

#include <gtest/gtest.h>

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace forkd {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class FakeTarget : public ControlTarget {
public:
    json status() const override { return {{"active", 3}, {"state", "running"}}; }
    json list() const override { return list_result; }
    std::string metrics() const override { return "forkd_connections_active 3\n"; }
    Status set(std::string_view key, std::string_view value) override {
        calls.push_back("set " + std::string(key) + " " + std::string(value));
        if (value == "bad") return failure("invalid value 'bad' for " + std::string(key));
        return Status::success();
    }
    void drain() override { calls.push_back("drain"); }
    void resume() override { calls.push_back("resume"); }
    Result<json> reload() override {
        calls.push_back("reload");
        if (throw_on_reload) throw std::runtime_error("boom");
        if (reload_error) return failure(*reload_error);
        return json{{"changes", json::array()}, {"reverted_set", json::array()}};
    }
    void stop() override { calls.push_back("stop"); }
    // Answers at once, or keeps the reply for the test to give (answer_upgrade_later).
    void upgrade(DeferredReply reply) override {
        calls.push_back("upgrade");
        if (answer_upgrade_later) pending_upgrade = std::move(reply);
        else reply(json{{"generation", 1}});
    }
    Status kill(std::uint64_t id) override {
        calls.push_back("kill " + std::to_string(id));
        return Status::success();
    }
    uid_t daemon_uid() const override { return 1234; }
    std::optional<gid_t> control_gid() const override { return group; }

    json list_result = json::array();
    std::optional<gid_t> group = 500;
    std::optional<std::string> reload_error;
    bool throw_on_reload = false;
    bool answer_upgrade_later = false;
    DeferredReply pending_upgrade;
    std::vector<std::string> calls;
};

PeerCredentials peer(uid_t uid, gid_t gid = 100, std::vector<gid_t> groups = {}) {
    return PeerCredentials{42, uid, gid, std::move(groups)};
}

control::Reply reply_of(const ControlOutcome& outcome) { return control::parse_reply(outcome.reply); }

TEST(ControlAuthorisation, RootDaemonUserAndControlGroupMayChangeState) {
    EXPECT_TRUE(may_change_state(peer(0), 1234, 500));
    EXPECT_TRUE(may_change_state(peer(1234), 1234, std::nullopt));
    EXPECT_TRUE(may_change_state(peer(1000, 500), 1234, 500));
    EXPECT_TRUE(may_change_state(peer(1000, 100, {20, 500}), 1234, 500));
    EXPECT_FALSE(may_change_state(peer(1000, 100, {20, 501}), 1234, 500));
    EXPECT_FALSE(may_change_state(peer(1000, 500), 1234, std::nullopt));
    EXPECT_FALSE(may_change_state(peer(65534, 65534), 1234, 500));
}

TEST(ControlDispatch, StatusAndListAreOpenToAnyone) {
    FakeTarget target;
    auto status = reply_of(dispatch_control_request(target, peer(65534), R"({"version":1,"command":"status"})"));
    ASSERT_TRUE(status.ok);
    EXPECT_EQ(status.result["active"], 3);
    auto list = reply_of(dispatch_control_request(target, peer(65534), R"({"version":1,"command":"list"})"));
    ASSERT_TRUE(list.ok);
    EXPECT_TRUE(list.result.is_array());
    auto metrics = reply_of(dispatch_control_request(target, peer(65534), R"({"version":1,"command":"metrics"})"));
    ASSERT_TRUE(metrics.ok);
    EXPECT_EQ(metrics.result, "forkd_connections_active 3\n");
}

TEST(ControlDispatch, StateChangesAreDeniedToStrangers) {
    FakeTarget target;
    for (const char* line : {R"({"version":1,"command":"drain"})", R"({"version":1,"command":"stop"})",
                             R"({"version":1,"command":"set","args":{"key":"overload","value":"reject"}})",
                             R"({"version":1,"command":"kill","args":{"id":1}})"}) {
        auto outcome = dispatch_control_request(target, peer(65534), line);
        auto reply = reply_of(outcome);
        EXPECT_FALSE(reply.ok);
        EXPECT_EQ(reply.code, control::ErrorCode::denied);
        EXPECT_EQ(reply.error, "permission denied");
        EXPECT_FALSE(outcome.stop);
    }
    EXPECT_TRUE(target.calls.empty());
}

TEST(ControlDispatch, TheReadOnlyDoorServesStatusAndListAndDeniesTheRestEvenToRoot) {
    FakeTarget target;
    const auto read_only = ControlDoor::read_only;
    EXPECT_TRUE(reply_of(dispatch_control_request(target, peer(65534), R"({"version":1,"command":"status"})",
                                                  read_only)).ok);
    EXPECT_TRUE(reply_of(dispatch_control_request(target, peer(65534), R"({"version":1,"command":"list"})",
                                                  read_only)).ok);
    EXPECT_TRUE(reply_of(dispatch_control_request(target, peer(65534), R"({"version":1,"command":"metrics"})",
                                                  read_only)).ok);
    for (uid_t uid : {uid_t{0}, uid_t{1234}, uid_t{65534}}) {
        auto outcome = dispatch_control_request(target, peer(uid), R"({"version":1,"command":"stop"})", read_only);
        auto reply = reply_of(outcome);
        EXPECT_FALSE(reply.ok);
        EXPECT_EQ(reply.code, control::ErrorCode::denied);
        EXPECT_TRUE(reply.error.starts_with("permission denied")) << reply.error;
        EXPECT_FALSE(outcome.stop);
    }
    EXPECT_TRUE(target.calls.empty());
}

TEST(ControlDispatch, CarriesOutCommandsForTheControlGroup) {
    FakeTarget target;
    auto member = peer(1000, 100, {500});
    EXPECT_TRUE(reply_of(dispatch_control_request(target, member,
        R"({"version":1,"command":"set","args":{"key":"max-connections","value":7}})")).ok);
    EXPECT_TRUE(reply_of(dispatch_control_request(target, member, R"({"version":1,"command":"drain"})")).ok);
    EXPECT_TRUE(reply_of(dispatch_control_request(target, member, R"({"version":1,"command":"resume"})")).ok);
    EXPECT_TRUE(reply_of(dispatch_control_request(target, member, R"({"version":1,"command":"kill","args":{"id":9}})")).ok);
    EXPECT_EQ(target.calls, (std::vector<std::string>{"set max-connections 7", "drain", "resume", "kill 9"}));
}

TEST(ControlDispatch, StopRepliesFirstAndLeavesTheCallToTheServer) {
    FakeTarget target;
    auto outcome = dispatch_control_request(target, peer(0), R"({"version":1,"command":"stop"})");
    EXPECT_TRUE(reply_of(outcome).ok);
    EXPECT_TRUE(outcome.stop);
    EXPECT_TRUE(target.calls.empty());
}

TEST(ControlDispatch, TargetErrorsAndExceptionsBecomeFailedReplies) {
    FakeTarget target;
    auto bad_set = reply_of(dispatch_control_request(target, peer(0),
        R"({"version":1,"command":"set","args":{"key":"idle-timeout","value":"bad"}})"));
    EXPECT_EQ(bad_set.code, control::ErrorCode::failed);
    EXPECT_EQ(bad_set.error, "invalid value 'bad' for idle-timeout");
    target.reload_error = "/etc/forkd/forkd.conf:3: option 'backlog': not a number";
    auto reload = reply_of(dispatch_control_request(target, peer(0), R"({"version":1,"command":"reload"})"));
    EXPECT_EQ(reload.error, *target.reload_error);
    target.throw_on_reload = true;
    auto thrown = reply_of(dispatch_control_request(target, peer(0), R"({"version":1,"command":"reload"})"));
    EXPECT_EQ(thrown.code, control::ErrorCode::failed);
    EXPECT_NE(thrown.error.find("boom"), std::string::npos);
}

TEST(ControlDispatch, EveryCommandOfTheTableReachesTheTarget) {
    FakeTarget target;
    for (control::Command command : control::all_commands()) {
        control::Request request;
        request.command = command;
        request.key = "overload";
        request.value = "reject";
        auto outcome = dispatch_control_request(target, peer(0), control::encode_request(request));
        EXPECT_TRUE(reply_of(outcome).ok) << control::command_name(command) << ": " << outcome.reply;
    }
    EXPECT_EQ(target.calls, (std::vector<std::string>{"set overload reject", "drain", "resume", "reload", "kill 0", "upgrade"}));
}

TEST(ControlDispatch, ADeferredReplyGoesToSendLaterOnce) {
    FakeTarget target;
    target.answer_upgrade_later = true;
    std::vector<std::string> sent;
    auto outcome = dispatch_control_request(target, peer(0), R"({"version":1,"command":"upgrade"})",
                                            ControlDoor::full, [&](std::string line) { sent.push_back(line); });
    EXPECT_TRUE(outcome.deferred);
    EXPECT_TRUE(outcome.reply.empty());
    ASSERT_TRUE(target.pending_upgrade);
    target.pending_upgrade(failure("upgrade refused: no"));
    target.pending_upgrade(json{{"generation", 1}});  // a second answer is ignored
    ASSERT_EQ(sent.size(), 1u);
    auto reply = control::parse_reply(sent[0].substr(0, sent[0].find('\n')));
    EXPECT_FALSE(reply.ok);
    EXPECT_EQ(reply.error, "upgrade refused: no");
}

TEST(ControlDispatch, BadRequestsGetTheirCode) {
    FakeTarget target;
    EXPECT_EQ(reply_of(dispatch_control_request(target, peer(0), "nonsense")).code, control::ErrorCode::bad_request);
    EXPECT_EQ(reply_of(dispatch_control_request(target, peer(0), R"({"version":1,"command":"fly"})")).code,
              control::ErrorCode::unknown_command);
}

// ---- the server on a real socket and a real sd-event loop -------------------------------------

struct EventDeleter { void operator()(sd_event* e) const { sd_event_unref(e); } };

class ControlServerTest : public ::testing::Test {
protected:
    void SetUp() override {
        char pattern[] = "/tmp/forkd-cs.XXXXXX";
        ASSERT_NE(::mkdtemp(pattern), nullptr);
        dir_ = pattern;
        path_ = dir_ + "/sub/ctl.sock";
        sd_event* raw = nullptr;
        ASSERT_GE(sd_event_new(&raw), 0);
        event_.reset(raw);
    }
    void TearDown() override {
        server_.reset();
        event_.reset();
        std::filesystem::remove_all(dir_);
    }

    void start(ControlServerLimits limits = {}) {
        server_ = std::make_unique<ControlServer>(event_.get(), path_, target_, limits);
    }

    // Runs the loop until pred() holds (checked between iterations) or the time is up.
    bool spin_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 3s) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (!pred()) {
            if (std::chrono::steady_clock::now() > deadline) return false;
            sd_event_run(event_.get(), 10000);
        }
        return true;
    }
    void spin_for(std::chrono::milliseconds time) {
        auto deadline = std::chrono::steady_clock::now() + time;
        while (std::chrono::steady_clock::now() < deadline) sd_event_run(event_.get(), 10000);
    }

    UniqueFd connect_client() {
        UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::strcpy(address.sun_path, path_.c_str());
        if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) < 0) return {};
        return fd;
    }

    // Reads what the server sends until EOF, spinning the loop meanwhile.
    std::string read_reply(int fd, bool until_eof = true, std::chrono::milliseconds timeout = 3s) {
        std::string data;
        bool done = false;
        spin_until([&] {
            pollfd pfd{fd, POLLIN, 0};
            while (::poll(&pfd, 1, 0) > 0) {
                char buffer[65536];
                ssize_t n = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
                if (n <= 0) {
                    done = true;
                    break;
                }
                data.append(buffer, static_cast<std::size_t>(n));
            }
            return done || (!until_eof && data.find('\n') != std::string::npos);
        }, timeout);
        return data;
    }

    std::string ask(const std::string& request) {
        UniqueFd fd = connect_client();
        EXPECT_TRUE(fd.valid());
        EXPECT_EQ(::send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL), static_cast<ssize_t>(request.size()));
        return read_reply(fd.get());
    }

    std::string dir_, path_;
    std::unique_ptr<sd_event, EventDeleter> event_;
    FakeTarget target_;
    std::unique_ptr<ControlServer> server_;
};

TEST_F(ControlServerTest, AnswersOneRequestPerConnectionAndCloses) {
    start();
    std::string reply = ask("{\"version\":1,\"command\":\"status\"}\n");
    ASSERT_TRUE(reply.ends_with("\n")) << reply;
    auto parsed = control::parse_reply(reply.substr(0, reply.size() - 1));
    EXPECT_TRUE(parsed.ok);
    EXPECT_EQ(parsed.result["state"], "running");
    EXPECT_TRUE(spin_until([&] { return server_->client_count() == 0; }));
}

TEST_F(ControlServerTest, RequestMayEndAtTheWritersShutdown) {
    start();
    UniqueFd fd = connect_client();
    std::string request = "{\"version\":1,\"command\":\"list\"}";
    ASSERT_GT(::send(fd.get(), request.data(), request.size(), 0), 0);
    ::shutdown(fd.get(), SHUT_WR);
    EXPECT_TRUE(control::parse_reply(read_reply(fd.get())).ok);
}

TEST_F(ControlServerTest, SocketIsMode0660AndParentIsCreated) {
    start();
    struct stat st {};
    ASSERT_EQ(::stat(path_.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 07777, 0660u);
    server_.reset();
    EXPECT_NE(::access(path_.c_str(), F_OK), 0) << "destructor unlinks the socket";
}

TEST_F(ControlServerTest, StaleSocketIsReplacedButALiveOneIsNot) {
    start();
    // A second server on the same path while the first listens: refused.
    try {
        ControlServer second(event_.get(), path_, target_);
        FAIL() << "a second server bound a socket in use";
    } catch (const std::runtime_error& e) {
        EXPECT_EQ(std::string(e.what()), "control socket " + path_ + " is in use");
    }
    // Leave a stale socket behind (listener closed, path kept) and start again.
    {
        UniqueFd stale(::socket(AF_UNIX, SOCK_STREAM, 0));
        server_.reset();
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::strcpy(address.sun_path, path_.c_str());
        ASSERT_EQ(::bind(stale.get(), reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    }
    ASSERT_EQ(::access(path_.c_str(), F_OK), 0);
    EXPECT_NO_THROW(start());
    EXPECT_TRUE(control::parse_reply(ask("{\"version\":1,\"command\":\"status\"}\n")).ok);
}

TEST_F(ControlServerTest, RefusesAPathThatIsNotASocket) {
    std::filesystem::create_directories(dir_ + "/sub");
    { std::FILE* f = std::fopen(path_.c_str(), "w"); std::fclose(f); }
    EXPECT_THROW(start(), std::runtime_error);
    EXPECT_EQ(::access(path_.c_str(), F_OK), 0) << "an ordinary file is never removed";
}

TEST_F(ControlServerTest, GarbageGetsAnErrorAndTheServerGoesOn) {
    start();
    auto reply = control::parse_reply(ask("\x01\x02garbage\n"));
    EXPECT_FALSE(reply.ok);
    EXPECT_EQ(reply.code, control::ErrorCode::bad_request);
    EXPECT_TRUE(control::parse_reply(ask("{\"version\":1,\"command\":\"status\"}\n")).ok);
}

TEST_F(ControlServerTest, OversizeRequestIsRefusedUnread) {
    start();
    UniqueFd fd = connect_client();
    std::string big(control::max_request_size + 4096, 'x');
    std::thread writer([&] { (void)!::send(fd.get(), big.data(), big.size(), MSG_NOSIGNAL); });
    std::string data = read_reply(fd.get());
    writer.join();
    auto reply = control::parse_reply(data.substr(0, data.find('\n')));
    EXPECT_FALSE(reply.ok);
    EXPECT_NE(reply.error.find("too large"), std::string::npos);
    EXPECT_TRUE(control::parse_reply(ask("{\"version\":1,\"command\":\"status\"}\n")).ok);
}

TEST_F(ControlServerTest, SlowClientTimesOut) {
    ControlServerLimits limits;
    limits.client_timeout = 200ms;
    start(limits);
    UniqueFd fd = connect_client();
    ASSERT_GT(::send(fd.get(), "{\"vers", 6, 0), 0);
    std::string data = read_reply(fd.get());
    auto reply = control::parse_reply(data.substr(0, data.find('\n')));
    EXPECT_NE(reply.error.find("timed out"), std::string::npos);
    EXPECT_EQ(server_->client_count(), 0u);
}

TEST_F(ControlServerTest, ClientsBeyondTheLimitAreTurnedAway) {
    ControlServerLimits limits;
    limits.max_clients = 2;
    start(limits);
    UniqueFd a = connect_client(), b = connect_client();
    ASSERT_TRUE(spin_until([&] { return server_->client_count() == 2; }));
    UniqueFd c = connect_client();
    std::string data = read_reply(c.get());
    EXPECT_NE(data.find("too many control connections"), std::string::npos) << data;
    a.reset();
    ASSERT_TRUE(spin_until([&] { return server_->client_count() == 1; }));
    EXPECT_TRUE(control::parse_reply(ask("{\"version\":1,\"command\":\"status\"}\n")).ok);
}

TEST_F(ControlServerTest, LargeRepliesAreDeliveredToASlowReader) {
    for (int i = 0; i < 20000; ++i) target_.list_result.push_back({{"id", i}, {"peer", "127.0.0.1:40000"}});
    start();
    UniqueFd fd = connect_client();
    std::string request = "{\"version\":1,\"command\":\"list\"}\n";
    ASSERT_GT(::send(fd.get(), request.data(), request.size(), 0), 0);
    spin_for(100ms);  // the server meets a full socket buffer before anyone reads
    std::string data = read_reply(fd.get());
    ASSERT_FALSE(data.empty());
    auto reply = control::parse_reply(data.substr(0, data.size() - 1));
    EXPECT_EQ(reply.result.size(), 20000u);
}

TEST_F(ControlServerTest, StopClientStaysOpenBeyondTheServer) {
    start();
    UniqueFd fd = connect_client();
    std::string request = "{\"version\":1,\"command\":\"stop\"}\n";
    ASSERT_GT(::send(fd.get(), request.data(), request.size(), 0), 0);
    std::string data = read_reply(fd.get(), /*until_eof=*/false);
    EXPECT_TRUE(control::parse_reply(data.substr(0, data.find('\n'))).ok);
    EXPECT_EQ(target_.calls, std::vector<std::string>{"stop"});
    spin_for(50ms);
    EXPECT_EQ(server_->client_count(), 1u);
    server_.reset();
    pollfd pfd{fd.get(), POLLIN, 0};
    EXPECT_EQ(::poll(&pfd, 1, 100), 0) << "no EOF until the process exits";
}

TEST_F(ControlServerTest, StopClientThatHangsUpIsForgotten) {
    start();
    UniqueFd fd = connect_client();
    std::string request = "{\"version\":1,\"command\":\"stop\"}\n";
    ASSERT_GT(::send(fd.get(), request.data(), request.size(), 0), 0);
    read_reply(fd.get(), /*until_eof=*/false);
    fd.reset();
    EXPECT_TRUE(spin_until([&] { return server_->client_count() == 0; }));
}

// A reply the target gives later: the client waits, other clients are served meanwhile, the
// reply and its audit come when the target answers, and one for a client gone is dropped.
TEST_F(ControlServerTest, DeferredReplyComesWhenTheTargetAnswers) {
    start();
    target_.answer_upgrade_later = true;
    UniqueFd waiting = connect_client();
    const std::string request = "{\"version\":1,\"command\":\"upgrade\"}\n";
    ASSERT_GT(::send(waiting.get(), request.data(), request.size(), 0), 0);
    ASSERT_TRUE(spin_until([&] { return bool(target_.pending_upgrade); }));
    EXPECT_TRUE(control::parse_reply(ask("{\"version\":1,\"command\":\"status\"}\n")).ok);
    pollfd pfd{waiting.get(), POLLIN, 0};
    EXPECT_EQ(::poll(&pfd, 1, 0), 0) << "no reply before the target's";
    target_.pending_upgrade(json{{"generation", 1}});
    std::string data = read_reply(waiting.get());
    auto reply = control::parse_reply(data.substr(0, data.find('\n')));
    EXPECT_TRUE(reply.ok) << data;
    EXPECT_EQ(reply.result["generation"], 1);
    EXPECT_TRUE(spin_until([&] { return server_->client_count() == 0; }));

    // Its client hung up first: the late reply reaches nobody, and harms nothing.
    target_.pending_upgrade = nullptr;
    UniqueFd gone = connect_client();
    ASSERT_GT(::send(gone.get(), request.data(), request.size(), 0), 0);
    ASSERT_TRUE(spin_until([&] { return bool(target_.pending_upgrade); }));
    gone.reset();
    ASSERT_TRUE(spin_until([&] { return server_->client_count() == 0; }));
    target_.pending_upgrade(failure("too late"));
    server_.reset();
    target_.pending_upgrade(failure("after the server"));  // nothing left to reach
}

TEST_F(ControlServerTest, DeferredReplyTimesOut) {
    ControlServerLimits limits;
    limits.deferred_timeout = 50ms;
    start(limits);
    target_.answer_upgrade_later = true;
    UniqueFd fd = connect_client();
    const std::string request = "{\"version\":1,\"command\":\"upgrade\"}\n";
    ASSERT_GT(::send(fd.get(), request.data(), request.size(), 0), 0);
    std::string data = read_reply(fd.get());
    auto reply = control::parse_reply(data.substr(0, data.find('\n')));
    EXPECT_FALSE(reply.ok);
    EXPECT_EQ(reply.error, "no answer in time");
}

} // namespace
} // namespace forkd
