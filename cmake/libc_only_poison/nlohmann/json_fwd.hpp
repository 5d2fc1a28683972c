// SPDX-License-Identifier: MIT
#error "a libc-only forkd unit (see cmake/LibcOnly.cmake) may not include <nlohmann/json_fwd.hpp>"
