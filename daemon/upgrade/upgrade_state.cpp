// SPDX-License-Identifier: MIT
#include "daemon/upgrade/upgrade_state.hpp"

#include <cstring>

namespace forkd::upgrade {
namespace {

constexpr char magic[8] = {'F', 'O', 'R', 'K', 'D', 'U', 'P', 'G'};
constexpr std::size_t header_size = sizeof magic + 4 + 4;
constexpr std::size_t trailer_size = 4;
// Bounds a corrupt length can never push an allocation past.
constexpr std::uint32_t max_body = 256u << 20;

std::uint32_t fnv1a(std::string_view bytes) {
    std::uint32_t hash = 2166136261u;
    for (unsigned char c : bytes) hash = (hash ^ c) * 16777619u;
    return hash;
}

class Writer {
public:
    void u8(std::uint8_t v) { out_.push_back(char(v)); }
    void u32(std::uint32_t v) { fixed(v); }
    void u64(std::uint64_t v) { fixed(v); }
    void i32(std::int32_t v) { fixed(std::uint32_t(v)); }
    void i64(std::int64_t v) { fixed(std::uint64_t(v)); }
    void fd(int v) { i32(v); }
    void boolean(bool v) { u8(v ? 1 : 0); }
    void str(std::string_view s) {
        u32(std::uint32_t(s.size()));
        out_.append(s);
    }
    template <class List, class Each>
    void list(const List& items, Each each) {
        u32(std::uint32_t(items.size()));
        for (const auto& item : items) each(item);
    }
    std::string take() { return std::move(out_); }

private:
    template <class T>
    void fixed(T v) {  // little-endian, whatever the host
        for (std::size_t i = 0; i < sizeof v; ++i) out_.push_back(char((v >> (8 * i)) & 0xff));
    }
    std::string out_;
};

// Every read checks the bounds; after the first failure all reads fail and ok() says so.
class Reader {
public:
    explicit Reader(std::string_view in) : in_(in) {}
    bool ok() const { return ok_; }
    bool at_end() const { return pos_ == in_.size(); }
    std::uint8_t u8() { return std::uint8_t(fixed<std::uint8_t>()); }
    std::uint32_t u32() { return fixed<std::uint32_t>(); }
    std::uint64_t u64() { return fixed<std::uint64_t>(); }
    std::int32_t i32() { return std::int32_t(fixed<std::uint32_t>()); }
    std::int64_t i64() { return std::int64_t(fixed<std::uint64_t>()); }
    int fd() { return i32(); }
    bool boolean() { return u8() != 0; }
    std::string str() {
        const std::uint32_t n = u32();
        if (!take(n)) return {};
        return std::string(in_.substr(pos_ - n, n));
    }
    // A count of items, each at least min_item bytes: a corrupt count cannot allocate much.
    std::uint32_t count(std::size_t min_item) {
        const std::uint32_t n = u32();
        if (ok_ && std::uint64_t(n) * min_item > in_.size() - pos_) ok_ = false;
        return ok_ ? n : 0;
    }

private:
    bool take(std::size_t n) {
        if (!ok_ || in_.size() - pos_ < n) return ok_ = false;
        pos_ += n;
        return true;
    }
    template <class T>
    T fixed() {
        if (!take(sizeof(T))) return 0;
        T v = 0;
        for (std::size_t i = 0; i < sizeof(T); ++i)
            v |= T(T(static_cast<unsigned char>(in_[pos_ - sizeof(T) + i])) << (8 * i));
        return v;
    }
    std::string_view in_;
    std::size_t pos_ = 0;
    bool ok_ = true;
};

void put_file(Writer& w, const SocketFile& f) {
    w.boolean(f.owned);
    w.str(f.path);
    w.u64(f.dev);
    w.u64(f.ino);
}

SocketFile get_file(Reader& r) {
    SocketFile f;
    f.owned = r.boolean();
    f.path = r.str();
    f.dev = r.u64();
    f.ino = r.u64();
    return f;
}

std::string encode_body(const UpgradeState& s) {
    Writer w;
    w.u32(s.generation);
    w.str(s.from_version);
    w.str(s.binary);
    w.list(s.argv, [&](const std::string& a) { w.str(a); });
    w.i64(s.started_ns);
    w.u8(s.state);
    w.fd(s.pidfile_fd);
    w.str(s.pidfile_path);
    w.fd(s.scoreboard_fd);
    w.i32(s.spawner_pid);
    w.fd(s.spawner_fd);
    w.u64(s.spawner_generation);
    w.u32(s.next_listener_tag);
    w.list(s.listeners, [&](const ListenerState& l) {
        w.fd(l.fd);
        w.u32(l.tag);
        w.str(l.configured);
        w.str(l.bound);
        w.boolean(l.is_unix);
        put_file(w, l.file);
    });
    w.list(s.control_sockets, [&](const ControlSocketState& c) {
        w.fd(c.fd);
        put_file(w, c.file);
    });
    w.list(s.connections, [&](const ConnectionState& c) {
        w.u64(c.id);
        w.u32(c.slot);
        w.i32(c.pid);
        w.u8(c.served_by);
        w.str(c.peer);
        w.str(c.source);
        w.i64(c.started_ns);
        w.i64(c.deadline_ns);
        w.boolean(c.term_sent);
        w.u8(std::uint8_t(c.ended_by));
        w.fd(c.stderr_fd);
        w.fd(c.tcp_view_fd);
    });
    w.list(s.totals, [&](const auto& t) {
        w.str(t.first);
        w.u64(t.second);
    });
    w.list(s.settings, [&](const auto& t) {
        w.str(t.first);
        w.str(t.second);
    });
    w.list(s.workers, [&](const WorkerState& k) {
        w.i32(k.pid);
        w.fd(k.fd);
        w.u32(k.index);
        w.u64(k.accepted);
        w.u64(k.generation);
        w.i64(k.retiring_since_ns);
    });
    return w.take();
}

bool decode_body(Reader& r, UpgradeState& s, std::uint32_t version) {
    s.generation = r.u32();
    s.from_version = r.str();
    s.binary = r.str();
    for (std::uint32_t n = r.count(4); n--;) s.argv.push_back(r.str());
    s.started_ns = r.i64();
    s.state = r.u8();
    s.pidfile_fd = r.fd();
    s.pidfile_path = r.str();
    s.scoreboard_fd = r.fd();
    s.spawner_pid = r.i32();
    s.spawner_fd = r.fd();
    s.spawner_generation = r.u64();
    s.next_listener_tag = r.u32();
    for (std::uint32_t n = r.count(4 + 4 + 4 + 4 + 1 + 21); n--;) {
        ListenerState l;
        l.fd = r.fd();
        l.tag = r.u32();
        l.configured = r.str();
        l.bound = r.str();
        l.is_unix = r.boolean();
        l.file = get_file(r);
        s.listeners.push_back(std::move(l));
    }
    for (std::uint32_t n = r.count(4 + 21); n--;) {
        ControlSocketState c;
        c.fd = r.fd();
        c.file = get_file(r);
        s.control_sockets.push_back(std::move(c));
    }
    for (std::uint32_t n = r.count(8 + 4 + 4 + 1 + 4 + 4 + 8 + 8 + 1 + 1 + 4 + 4); n--;) {
        ConnectionState c;
        c.id = r.u64();
        c.slot = r.u32();
        c.pid = r.i32();
        c.served_by = r.u8();
        c.peer = r.str();
        c.source = r.str();
        c.started_ns = r.i64();
        c.deadline_ns = r.i64();
        c.term_sent = r.boolean();
        c.ended_by = std::int8_t(r.u8());
        c.stderr_fd = r.fd();
        c.tcp_view_fd = r.fd();
        s.connections.push_back(std::move(c));
    }
    for (std::uint32_t n = r.count(4 + 8); n--;) {
        std::string name = r.str();
        s.totals.emplace_back(std::move(name), r.u64());
    }
    for (std::uint32_t n = r.count(4 + 4); n--;) {
        std::string name = r.str();
        s.settings.emplace_back(std::move(name), r.str());
    }
    const bool worker_counts = version >= 2, worker_retiring = version >= 3;
    for (std::uint32_t n = r.count(4 + 4 + 4 + (worker_counts ? 16 : 0) + (worker_retiring ? 8 : 0)); n--;) {
        WorkerState k;
        k.pid = r.i32();
        k.fd = r.fd();
        k.index = r.u32();
        if (worker_counts) {
            k.accepted = r.u64();
            k.generation = r.u64();
        }
        if (worker_retiring) k.retiring_since_ns = r.i64();
        s.workers.push_back(k);
    }
    return r.ok();
}

} // namespace

std::vector<int> UpgradeState::descriptors() const {
    std::vector<int> fds{pidfile_fd, scoreboard_fd, spawner_fd};
    for (const auto& l : listeners) fds.push_back(l.fd);
    for (const auto& c : control_sockets) fds.push_back(c.fd);
    for (const auto& c : connections) fds.insert(fds.end(), {c.stderr_fd, c.tcp_view_fd});
    for (const auto& k : workers) fds.push_back(k.fd);
    std::erase_if(fds, [](int fd) { return fd < 0; });
    return fds;
}

std::string encode_state(const UpgradeState& state) {
    const std::string body = encode_body(state);
    Writer w;
    for (char c : magic) w.u8(std::uint8_t(c));
    w.u32(state_version);
    w.u32(std::uint32_t(body.size()));
    std::string out = w.take() + body;
    Writer trailer;
    trailer.u32(fnv1a(body));
    return out + trailer.take();
}

Result<std::uint32_t> state_version_of(std::string_view bytes) {
    if (bytes.size() < header_size || std::memcmp(bytes.data(), magic, sizeof magic) != 0)
        return failure("not a forkd upgrade state record");
    Reader r(bytes.substr(sizeof magic, 4));
    return r.u32();
}

Result<UpgradeState> decode_state(std::string_view bytes) {
    auto version = state_version_of(bytes);
    if (!version) return version.error();
    if (!can_read(*version))
        return failure("state record version " + std::to_string(*version) + "; this forkd reads versions " +
                       std::to_string(oldest_readable_version) + " to " + std::to_string(state_version));
    Reader header(bytes.substr(sizeof magic + 4, 4));
    const std::uint32_t length = header.u32();
    if (length > max_body || bytes.size() < header_size + std::size_t(length) + trailer_size)
        return failure("state record truncated: " + std::to_string(bytes.size()) + " bytes, its header says " +
                       std::to_string(header_size + std::size_t(length) + trailer_size));
    if (bytes.size() > header_size + length + trailer_size)
        return failure("state record has " + std::to_string(bytes.size() - header_size - length - trailer_size) +
                       " bytes after its end");
    const std::string_view body = bytes.substr(header_size, length);
    Reader trailer(bytes.substr(header_size + length, trailer_size));
    if (trailer.u32() != fnv1a(body)) return failure("state record checksum mismatch");
    UpgradeState state;
    Reader r(body);
    if (!decode_body(r, state, *version)) return failure("state record body truncated");
    if (!r.at_end()) return failure("state record body longer than its fields");
    return state;
}

} // namespace forkd::upgrade
