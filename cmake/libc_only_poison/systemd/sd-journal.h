// SPDX-License-Identifier: MIT
#error "a libc-only forkd unit (see cmake/LibcOnly.cmake) may not include <systemd/sd-journal.h>"
