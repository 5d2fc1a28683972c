// SPDX-License-Identifier: MIT
#include "ctl/top_command.hpp"

#include "ctl/commands.hpp"
#include "ctl/control_client.hpp"
#include "ctl/top_frame.hpp"

#include <curses.h>
#include <signal.h>
#include <time.h>

#include <algorithm>
#include <csignal>
#include <iostream>

namespace forkd::ctl {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

volatile std::sig_atomic_t g_stop_signal = 0;
extern "C" void note_stop_signal(int signo) { g_stop_signal = signo; }

double monotonic_s() {
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9;
}

// One request; a failed reply becomes a ClientError like an unreachable daemon.
json ask(const std::string& path, control::Command command, std::chrono::milliseconds timeout) {
    control::Request request;
    request.command = command;
    auto reply = request_once(path, request, deadline_after(timeout));
    if (!reply.ok) throw ClientError(reply.code == control::ErrorCode::denied ? exit_denied : exit_failed, reply.error);
    return reply.result;
}

struct Sample {
    json status, list;
};

Sample sample(const Invocation& invocation) {
    const std::string path = socket_path(invocation);
    const auto timeout = invocation.timeout.value_or(default_reply_timeout);
    return {ask(path, control::Command::status, timeout), ask(path, control::Command::list, timeout)};
}

// Owns the curses screen: endwin() on every way out, exceptions included.
class Screen {
public:
    Screen() {
        initscr();
        cbreak();
        noecho();
        keypad(stdscr, TRUE);
        curs_set(0);
    }
    ~Screen() { endwin(); }
    Screen(const Screen&) = delete;
    Screen& operator=(const Screen&) = delete;

    void draw(const TopFrame& frame) {
        erase();
        for (std::size_t i = 0; i < frame.lines.size() && static_cast<int>(i) < LINES; ++i) {
            if (frame.highlight == i) attron(A_REVERSE);
            mvaddnstr(static_cast<int>(i), 0, frame.lines[i].c_str(), COLS);
            if (frame.highlight == i) attroff(A_REVERSE);
        }
        refresh();
    }
};

// SIGINT, SIGTERM, SIGHUP end top through the loop, so that the screen is restored.
class StopSignals {
public:
    StopSignals() {
        struct sigaction action {};
        action.sa_handler = note_stop_signal;
        sigemptyset(&action.sa_mask);
        for (int signo : {SIGINT, SIGTERM, SIGHUP}) sigaction(signo, &action, nullptr);
    }
};

struct TopState {
    TopSort sort = TopSort::age;
    std::size_t selected = 0;
    std::optional<std::uint64_t> selected_id;  // the selection follows its connection when rows move
    std::string message;
    IdleTracker idle;
    RateMeter rates;
};

TopFrameInput frame_input(const Sample& s, TopState& state, TopRates rates, bool interactive) {
    TopFrameInput input;
    input.status = s.status;
    input.rows = top_rows(s.list);
    if (interactive) state.idle.update(input.rows, monotonic_s());  // one frame: no idle time to tell
    sort_rows(input.rows, state.sort);
    if (state.selected_id) {
        auto it = std::find_if(input.rows.begin(), input.rows.end(),
                               [&](const TopRow& row) { return row.id == *state.selected_id; });
        if (it != input.rows.end()) state.selected = static_cast<std::size_t>(it - input.rows.begin());
    }
    if (!input.rows.empty()) state.selected = std::min(state.selected, input.rows.size() - 1);
    state.selected_id = input.rows.empty() ? std::nullopt : std::optional(input.rows[state.selected].id);
    input.rates = rates;
    input.sort = state.sort;
    input.selected = state.selected;
    input.message = state.message;
    input.interactive = interactive;
    return input;
}

void kill_selected(const Invocation& invocation, TopState& state) {
    if (!state.selected_id) {
        state.message = "no connection selected";
        return;
    }
    control::Request request;
    request.command = control::Command::kill;
    request.id = *state.selected_id;
    const std::string id = std::to_string(request.id);
    try {
        auto reply = request_once(socket_path(invocation), request, deadline_after(2000ms));
        if (reply.ok) state.message = "connection " + id + " killed";
        else if (reply.code == control::ErrorCode::denied)
            state.message = "kill " + id + ": permission denied (needs root, forkd's user or its control group)";
        else state.message = "kill " + id + ": " + reply.error;
    } catch (const ClientError& e) {
        state.message = std::string("kill ") + id + ": " + e.what();
    }
}

// What a key does; false to quit.
bool on_key(int key, const Invocation& invocation, TopState& state) {
    switch (key) {
    case 'q': case 'Q': case 3: return false;
    case 'a': state.sort = TopSort::age; state.message = "sorted by age"; break;
    case 'b': state.sort = TopSort::bytes; state.message = "sorted by bytes"; break;
    case 'i': state.sort = TopSort::idle; state.message = "sorted by idle time"; break;
    case KEY_UP: if (state.selected) --state.selected; state.selected_id.reset(); break;
    case KEY_DOWN: ++state.selected; state.selected_id.reset(); break;
    case 'k': kill_selected(invocation, state); break;
    default: break;
    }
    return true;
}

int run_once_frame(const Invocation& invocation, Output& output) {
    TopState state;
    Sample s = sample(invocation);
    if (invocation.json) {  // what the frame is made of, for scripts that would rather parse
        output.out << json{{"status", s.status}, {"connections", s.list}}.dump(2) << "\n" << std::flush;
        return exit_ok;
    }
    output.out << frame_text(top_frame(frame_input(s, state, {}, false))) << std::flush;
    return exit_ok;
}

int run_live(const Invocation& invocation, Output& output) {
    StopSignals signals;
    TopState state;
    std::string gone;
    {
        Screen screen;
        Sample s = sample(invocation);  // before the first frame: an absent forkd is a plain error
        TopRates rates = state.rates.update(s.status, monotonic_s());
        double next_s = monotonic_s() + static_cast<double>(invocation.delay.count()) / 1000;
        for (;;) {
            TopFrameInput input = frame_input(s, state, rates, true);
            input.width = COLS;
            input.height = LINES;
            screen.draw(top_frame(input));
            // Keys are read in short waits so that a signal ends top promptly.
            timeout(100);
            const int key = getch();
            if (g_stop_signal) break;
            if (key != ERR && !on_key(key, invocation, state)) break;
            const bool redraw_now = key != ERR;
            if (!redraw_now && monotonic_s() < next_s) continue;
            if (monotonic_s() >= next_s || key == 'k') {
                try {
                    s = sample(invocation);
                } catch (const ClientError& e) {
                    gone = e.what();
                    break;
                }
                rates = state.rates.update(s.status, monotonic_s());
                next_s = monotonic_s() + static_cast<double>(invocation.delay.count()) / 1000;
            }
        }
    }
    if (!gone.empty()) {
        output.err << "forkctl: top: forkd went away: " << gone << "\n";
        return exit_unreachable;
    }
    return exit_ok;
}

} // namespace

int run_top(const Invocation& invocation, Output& output) {
    return invocation.once ? run_once_frame(invocation, output) : run_live(invocation, output);
}

} // namespace forkd::ctl
