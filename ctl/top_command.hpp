// SPDX-License-Identifier: MIT
#pragma once
// forkctl top: status and list every -d seconds drawn with ncurses (the frame itself is
// ctl/top_frame.cpp's), or one frame on stdout with --once.
namespace forkd::ctl {

struct Invocation;
struct Output;

// Exit 0 on q, Ctrl-C or a signal; 3 when forkd goes away (the terminal restored first).
int run_top(const Invocation& invocation, Output& output);

} // namespace forkd::ctl
