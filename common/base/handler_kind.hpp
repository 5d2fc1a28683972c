// SPDX-License-Identifier: MIT
#pragma once
// What serves a connection. Its own header so that the spawner, which links nothing of the
// configuration code, can name the built-in handlers.
namespace forkd {

enum class HandlerKind { echo, discard, daytime, chargen, exec, proxy };

} // namespace forkd
