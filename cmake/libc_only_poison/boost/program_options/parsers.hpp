// SPDX-License-Identifier: MIT
#error "a libc-only forkd unit (see cmake/LibcOnly.cmake) may not include <boost/program_options/parsers.hpp>"
