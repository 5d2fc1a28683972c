#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# run-upgrade-bench.sh's clock: holds N echo connections open through forkd, then times
#   upgrade: the control request "upgrade" until the new image serves a new connection
#            (status answers with the next generation, then one echo round trip);
#   restart: a systemctl-restart-style stop (control request "stop", until the process is gone)
#            and start of the same binary and config, until it serves a new connection.
# Afterwards every held connection must still echo (upgrade) or is counted lost (restart).
# Prints one JSON object per measurement. Loopback and the temp dir only.
import json, os, resource, socket, subprocess, sys, time

def request(sock_path, command, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(max(0.1, deadline - time.monotonic()))
            s.connect(sock_path)
            s.sendall((json.dumps({"version": 1, "command": command}) + "\n").encode())
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            s.close()
            if data:
                return json.loads(data)
        except (OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"no answer to {command} on {sock_path}")
        time.sleep(0.001)

def echo_once(port, timeout=5.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(b"ping\n")
    got = b""
    while len(got) < 5:
        chunk = s.recv(64)
        if not chunk:
            break
        got += chunk
    s.close()
    return got == b"ping\n"

def serve_wait(port, deadline):
    while time.monotonic() < deadline:
        try:
            if echo_once(port, 1.0):
                return True
        except OSError:
            time.sleep(0.001)
    return False

def hold(port, n):
    held = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"h\n")
        if s.recv(2) != b"h\n":
            raise RuntimeError(f"held connection {i} not served")
        held.append(s)
    return held

def still_echo(held):
    lost = 0
    for s in held:
        try:
            s.settimeout(5)
            s.sendall(b"k\n")
            if s.recv(2) != b"k\n":
                lost += 1
        except OSError:
            lost += 1
    return lost

def main():
    mode, forkd, conf, sock_path, port, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
    pid = int(sys.argv[7]) if len(sys.argv) > 7 else 0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, n + 256)), hard))
    held = hold(port, n)
    if mode == "upgrade":
        before = request(sock_path, "status")["result"]["generation"]
        t0 = time.monotonic()
        reply = request(sock_path, "upgrade")
        if not reply.get("ok"):
            raise RuntimeError(f"upgrade refused: {reply}")
        while request(sock_path, "status")["result"]["generation"] <= before:
            time.sleep(0.0005)
        ok = serve_wait(port, time.monotonic() + 10)
        t1 = time.monotonic()
        new_pid = pid
    else:
        t0 = time.monotonic()
        request(sock_path, "stop")
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            if os.path.exists(f"/proc/{pid}") and open(f"/proc/{pid}/stat").read().split(") ")[1][0] == "Z":
                break
            time.sleep(0.0005)
        proc = subprocess.Popen([forkd, "-f", "-c", conf], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        ok = serve_wait(port, time.monotonic() + 10)
        t1 = time.monotonic()
        new_pid = proc.pid
    lost = still_echo(held)
    for s in held:
        s.close()
    print(json.dumps({"mode": mode, "held": n, "ms": round((t1 - t0) * 1000, 2), "served": ok,
                      "held_lost": lost, "pid": new_pid}))

if __name__ == "__main__":
    main()
