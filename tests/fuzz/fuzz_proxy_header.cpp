// SPDX-License-Identifier: MIT
// libFuzzer target: the PROXY protocol header parser must never crash, read past its input or
// claim more bytes than it was given, and must answer the same for the same bytes whichever way
// they arrived (a header cut anywhere asks for more until it is whole).
#include "daemon/admission/proxy_header.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace forkd;
    const std::span<const std::uint8_t> input(data, size);
    const ProxyHeader whole = parse_proxy_header(input);
    switch (whole.status) {
    case ProxyParse::done:
        if (whole.consumed == 0 || whole.consumed > size || whole.consumed > proxy_header_max_size) std::abort();
        if (whole.command == ProxyCommand::proxy &&
            (whole.source.ss_family != whole.destination.ss_family || whole.address_length == 0))
            std::abort();
        // The header alone parses the same; every prefix of it waits for more.
        if (parse_proxy_header(input.first(whole.consumed)).consumed != whole.consumed) std::abort();
        for (std::size_t n = 0; n < whole.consumed; n += 1 + n / 8)
            if (parse_proxy_header(input.first(n)).status != ProxyParse::need_more) std::abort();
        break;
    case ProxyParse::malformed:
        if (!whole.reason || !*whole.reason || std::strchr(whole.reason, '\n')) std::abort();
        break;
    case ProxyParse::need_more:
        if (size > proxy_header_max_size) std::abort();  // bounded: a wait never grows without end
        if (!could_be_proxy_header(input)) std::abort();
        break;
    }
    return 0;
}
