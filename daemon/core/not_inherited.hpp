// SPDX-License-Identifier: MIT
#pragma once
// Memory that a forked child does not inherit (madvise MADV_DONTFORK): the range is simply
// absent from the child. For a process that forks at a high rate, that is the point: after a
// fork, every page the parent writes that a child still shares costs the parent a
// copy-on-write fault and a page copy, but pages no child holds are written freely. forkd's
// spawner keeps everything it writes between forks (datagram buffers, pid table, report
// queue) in such memory.
//
// A child must never touch it: it is unmapped there, and a pointer into it faults.
#include <sys/mman.h>

#include <cerrno>
#include <cstddef>
#include <memory>
#include <new>
#include <span>
#include <stdexcept>
#include <system_error>
#include <utility>

namespace forkd {

// `count` value-initialised T in their own anonymous mapping, destroyed and unmapped with it.
template <typename T>
class NotInherited {
public:
    explicit NotInherited(std::size_t count = 1) : count_(count), bytes_(count * sizeof(T)) {
        static_assert(alignof(T) <= 4096, "a mapping is only page-aligned");
        if (count == 0) throw std::invalid_argument("NotInherited: no element");
        void* memory = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (memory == MAP_FAILED) throw std::system_error(errno, std::system_category(), "mmap");
        if (madvise(memory, bytes_, MADV_DONTFORK) != 0) {
            const int error = errno;
            munmap(memory, bytes_);
            throw std::system_error(error, std::system_category(), "madvise(MADV_DONTFORK)");
        }
        items_ = static_cast<T*>(memory);
        std::uninitialized_value_construct_n(items_, count_);
    }
    ~NotInherited() {
        std::destroy_n(items_, count_);
        munmap(items_, bytes_);
    }
    NotInherited(const NotInherited&) = delete;
    NotInherited& operator=(const NotInherited&) = delete;

    T& operator*() const { return items_[0]; }
    T* operator->() const { return items_; }
    std::span<T> items() const { return {items_, count_}; }

private:
    std::size_t count_;
    std::size_t bytes_;
    T* items_ = nullptr;
};

} // namespace forkd
