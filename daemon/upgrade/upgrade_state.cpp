// SPDX-License-Identifier: MIT
#include "daemon/upgrade/upgrade_state.hpp"

#include <cstring>
#include <tuple>
#include <type_traits>

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
    void str(std::string_view s) {
        u32(std::uint32_t(s.size()));
        out_.append(s);
    }
    std::string take() { return std::move(out_); }

private:
    template <class T>
    void fixed(T v) {  // little-endian, whatever the host
        for (std::size_t i = 0; i < sizeof v; ++i) out_.push_back(char((v >> (8 * i)) & 0xff));
    }
    std::string out_;
};

// Every read checks the bounds; after the first failure all reads fail and ok() says so, and
// failed_field() which field ran out ("connections.peer").
class Reader {
public:
    explicit Reader(std::string_view in) : in_(in) {}
    bool ok() const { return ok_; }
    bool at_end() const { return pos_ == in_.size(); }
    std::uint8_t u8() { return fixed<std::uint8_t>(); }
    std::uint32_t u32() { return fixed<std::uint32_t>(); }
    std::uint64_t u64() { return fixed<std::uint64_t>(); }
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
    // Called by each field, innermost first, whose read made ok() false.
    void failed_in(const char* field) {
        failed_field_ = failed_field_.empty() ? field : std::string(field) + "." + failed_field_;
    }
    const std::string& failed_field() const { return failed_field_; }

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
    std::string failed_field_;
};

// ---- how a value goes on the wire ------------------------------------------------------------
// A codec names the C++ type it carries (`type`), writes and reads it, and says how few bytes
// it can take (what bounds a list's count). Reads get the record's version.

// A fixed-size integer of Wire bytes, little-endian, for a member of type T (signed ones as
// their two's complement bit pattern).
template <class T, class Wire>
struct Fixed {
    using type = T;
    static constexpr std::size_t min_size(std::uint32_t) { return sizeof(Wire); }
    static void write(Writer& w, T v) {
        if constexpr (sizeof(Wire) == 1) w.u8(Wire(v));
        else if constexpr (sizeof(Wire) == 4) w.u32(Wire(v));
        else w.u64(Wire(v));
    }
    static void read(Reader& r, T& v, std::uint32_t) {
        if constexpr (sizeof(Wire) == 1) v = T(r.u8());
        else if constexpr (sizeof(Wire) == 4) v = T(r.u32());
        else v = T(r.u64());
    }
};

struct Boolean {
    using type = bool;
    static constexpr std::size_t min_size(std::uint32_t) { return 1; }
    static void write(Writer& w, bool v) { w.u8(v ? 1 : 0); }
    static void read(Reader& r, bool& v, std::uint32_t) { v = r.u8() != 0; }
};

// A u32 length, then the bytes.
struct String {
    using type = std::string;
    static constexpr std::size_t min_size(std::uint32_t) { return 4; }
    static void write(Writer& w, const std::string& v) { w.str(v); }
    static void read(Reader& r, std::string& v, std::uint32_t) { v = r.str(); }
};

constexpr Fixed<std::uint8_t, std::uint8_t> u8;
constexpr Fixed<std::int8_t, std::uint8_t> i8;
constexpr Fixed<std::uint32_t, std::uint32_t> u32;
constexpr Fixed<std::int32_t, std::uint32_t> i32;
constexpr Fixed<int, std::uint32_t> fd;  // a descriptor the new image inherits
constexpr Fixed<std::uint64_t, std::uint64_t> u64;
constexpr Fixed<std::int64_t, std::uint64_t> i64;
constexpr Boolean boolean;
constexpr String str;

// A u32 count, then each item.
template <class Item>
struct List {
    Item item;
    using type = std::vector<typename Item::type>;
    static constexpr std::size_t min_size(std::uint32_t) { return 4; }
    void write(Writer& w, const type& v) const {
        w.u32(std::uint32_t(v.size()));
        for (const auto& each : v) item.write(w, each);
    }
    void read(Reader& r, type& v, std::uint32_t version) const {
        for (std::uint32_t n = r.count(item.min_size(version)); n--;) {
            typename Item::type each{};
            item.read(r, each, version);
            v.push_back(std::move(each));
        }
    }
};
template <class Item>
constexpr List<Item> list_of(Item item) {
    return {item};
}

// First, then second.
template <class First, class Second>
struct Pair {
    First first;
    Second second;
    using type = std::pair<typename First::type, typename Second::type>;
    constexpr std::size_t min_size(std::uint32_t version) const {
        return first.min_size(version) + second.min_size(version);
    }
    void write(Writer& w, const type& v) const {
        first.write(w, v.first);
        second.write(w, v.second);
    }
    void read(Reader& r, type& v, std::uint32_t version) const {
        first.read(r, v.first, version);
        second.read(r, v.second, version);
    }
};
template <class First, class Second>
constexpr Pair<First, Second> pair_of(First first, Second second) {
    return {first, second};
}

// ---- the records' fields: a table per record, in their order on the wire --------------------

// One row: the field's name, the member it is, and its codec. since(): the first state version
// that has it (an older record is read without it, the member keeps its default).
template <class Record, class Codec>
struct Field {
    const char* name;
    typename Codec::type Record::*member;
    Codec codec;
    std::uint32_t first_version = 1;

    constexpr Field since(std::uint32_t version) const {
        Field later = *this;
        later.first_version = version;
        return later;
    }
    constexpr bool in(std::uint32_t version) const { return version >= first_version; }
    void read(Reader& r, Record& record, std::uint32_t version) const {
        if (!in(version)) return;
        const bool was_ok = r.ok();
        codec.read(r, record.*member, version);
        if (was_ok && !r.ok()) r.failed_in(name);
    }
};
template <class Record, class Member, class Codec>
constexpr Field<Record, Codec> field(const char* name, Member Record::*member, Codec codec) {
    static_assert(std::is_same_v<Member, typename Codec::type>, "the codec carries another type than the member's");
    return {name, member, codec};
}

// A record is its fields in order, nothing around them.
template <class Record, class... Codecs>
struct Fields {
    std::tuple<Field<Record, Codecs>...> rows;
    using type = Record;
    constexpr std::size_t min_size(std::uint32_t version) const {
        return std::apply([&](const auto&... f) { return (std::size_t(0) + ... + (f.in(version) ? f.codec.min_size(version) : 0)); },
                          rows);
    }
    void write(Writer& w, const Record& record) const {
        std::apply([&](const auto&... f) { (f.codec.write(w, record.*f.member), ...); }, rows);
    }
    void read(Reader& r, Record& record, std::uint32_t version) const {
        std::apply([&](const auto&... f) { (f.read(r, record, version), ...); }, rows);
    }
};
template <class Record, class... Codecs>
constexpr Fields<Record, Codecs...> fields(Field<Record, Codecs>... rows) {
    return {{rows...}};
}

constexpr auto socket_file_fields = fields(
    field("owned", &SocketFile::owned, boolean),
    field("path", &SocketFile::path, str),
    field("dev", &SocketFile::dev, u64),
    field("ino", &SocketFile::ino, u64));

constexpr auto listener_fields = fields(
    field("fd", &ListenerState::fd, fd),
    field("tag", &ListenerState::tag, u32),
    field("configured", &ListenerState::configured, str),
    field("bound", &ListenerState::bound, str),
    field("is_unix", &ListenerState::is_unix, boolean),
    field("file", &ListenerState::file, socket_file_fields));

constexpr auto control_socket_fields = fields(
    field("fd", &ControlSocketState::fd, fd),
    field("file", &ControlSocketState::file, socket_file_fields));

constexpr auto connection_fields = fields(
    field("id", &ConnectionState::id, u64),
    field("slot", &ConnectionState::slot, u32),
    field("pid", &ConnectionState::pid, i32),
    field("served_by", &ConnectionState::served_by, u8),
    field("peer", &ConnectionState::peer, str),
    field("source", &ConnectionState::source, str),
    field("started_ns", &ConnectionState::started_ns, i64),
    field("deadline_ns", &ConnectionState::deadline_ns, i64),
    field("term_sent", &ConnectionState::term_sent, boolean),
    field("ended_by", &ConnectionState::ended_by, i8),
    field("stderr_fd", &ConnectionState::stderr_fd, fd),
    field("tcp_view_fd", &ConnectionState::tcp_view_fd, fd));

constexpr auto worker_fields = fields(
    field("pid", &WorkerState::pid, i32),
    field("fd", &WorkerState::fd, fd),
    field("index", &WorkerState::index, u32),
    field("accepted", &WorkerState::accepted, u64).since(2),
    field("generation", &WorkerState::generation, u64).since(2));

// The body of the record.
constexpr auto state_fields = fields(
    field("generation", &UpgradeState::generation, u32),
    field("from_version", &UpgradeState::from_version, str),
    field("binary", &UpgradeState::binary, str),
    field("argv", &UpgradeState::argv, list_of(str)),
    field("started_ns", &UpgradeState::started_ns, i64),
    field("state", &UpgradeState::state, u8),
    field("pidfile_fd", &UpgradeState::pidfile_fd, fd),
    field("pidfile_path", &UpgradeState::pidfile_path, str),
    field("scoreboard_fd", &UpgradeState::scoreboard_fd, fd),
    field("spawner_pid", &UpgradeState::spawner_pid, i32),
    field("spawner_fd", &UpgradeState::spawner_fd, fd),
    field("spawner_generation", &UpgradeState::spawner_generation, u64),
    field("next_listener_tag", &UpgradeState::next_listener_tag, u32),
    field("listeners", &UpgradeState::listeners, list_of(listener_fields)),
    field("control_sockets", &UpgradeState::control_sockets, list_of(control_socket_fields)),
    field("connections", &UpgradeState::connections, list_of(connection_fields)),
    field("totals", &UpgradeState::totals, list_of(pair_of(str, u64))),
    field("settings", &UpgradeState::settings, list_of(pair_of(str, str))),
    field("workers", &UpgradeState::workers, list_of(worker_fields)));

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
    Writer body_writer;
    state_fields.write(body_writer, state);
    const std::string body = body_writer.take();
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
    state_fields.read(r, state, *version);
    if (!r.ok()) return failure("state record body truncated at " + r.failed_field());
    if (!r.at_end()) return failure("state record body longer than its fields");
    return state;
}

} // namespace forkd::upgrade
