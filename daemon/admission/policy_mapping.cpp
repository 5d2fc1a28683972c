// SPDX-License-Identifier: MIT
#include "daemon/admission/policy_mapping.hpp"

#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>

namespace forkd {

bool PolicyMapping::map(int fd) {
    struct stat st {};
    if (fstat(fd, &st) != 0 || st.st_size <= 0) return false;
    const std::size_t length = std::size_t(st.st_size);
    void* address = mmap(nullptr, length, PROT_READ, MAP_SHARED, fd, 0);
    if (address == MAP_FAILED) return false;
    madvise(address, length, MADV_DONTFORK);
    const auto view = decode_policy({static_cast<const std::byte*>(address), length});
    if (!view) {
        munmap(address, length);
        return false;
    }
    reset();
    address_ = address;
    length_ = length;
    view_ = *view;
    return true;
}

void PolicyMapping::send_busy_message(int fd, Refusal why) const {
    const std::string_view text = view_.busy_message;
    if (text.empty() || !busy_message_applies(why)) return;
    [[maybe_unused]] const ssize_t sent = send(fd, text.data(), text.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
}

void PolicyMapping::reset() {
    if (address_) munmap(address_, length_);
    address_ = nullptr;
    view_ = {};
}

} // namespace forkd
