// SPDX-License-Identifier: MIT
#include "ctl/commands.hpp"

int main(int argc, char** argv) { return forkd::ctl::run_forkctl(argc, argv); }
