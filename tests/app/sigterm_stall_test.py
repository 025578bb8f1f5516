#!/usr/bin/env python3
"""easel-server against a hostile peer, as an operator runs it: 24 img2img requests whose init_image
links to a host that accepts and never answers. /health must answer in under a second meanwhile, and
SIGTERM must stop the server in under ten seconds (the stalled fetches are cancelled, not waited for).

usage: sigterm_stall_test.py <easel-server binary>
Talks to 127.0.0.1 only."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

from easel_harness import start_easel_server


def tarpit():
    """A listener that accepts every connection and never answers."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(128)
    held = []

    def accept():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            held.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    return server.getsockname()[1], held


def post(port, path, body, timeout=60):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0  # the connection closed: the server stopped


def main():
    binary = sys.argv[1]
    data = tempfile.mkdtemp(prefix="easel-sigterm-")
    try:
        created = subprocess.run([binary, "admin", "create-user", "--email", "heavy@example.com", "--plan", "premium",
                                  "--data-dir", data], input="correct horse\n", capture_output=True, text=True,
                                 check=True)
        key = json.loads(created.stdout)["api_key"]
        try:
            server, port = start_easel_server([binary, "--listen", "127.0.0.1:0", "--data-dir", data,
                                               "--allow-private-image-urls"], timeout=120)
        except RuntimeError as e:
            print(f"FAIL: {e}")
            return 1

        pit_port, held = tarpit()
        statuses = []
        workers = [threading.Thread(target=lambda i=i: statuses.append(post(port, "/api/v6/images/img2img", {
            "key": key, "prompt": "a red circle", "init_image": f"http://127.0.0.1:{pit_port}/image{i}.png"})))
                   for i in range(24)]
        for w in workers:
            w.start()
        start = time.time()
        while len(held) < 4 and time.time() - start < 10:
            time.sleep(0.05)
        if len(held) < 4:
            print(f"FAIL: only {len(held)} fetches reached the stalled host")
            server.kill()
            return 1

        t0 = time.time()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as r:
                health = r.status
        except OSError as e:
            health = str(e)
        health_seconds = time.time() - t0
        print(f"answered so far: {sorted(statuses)}")
        print(f"/health: HTTP {health} in {health_seconds:.3f} s with {len(held)} stalled fetches")

        t0 = time.time()
        server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            code = None
        stop_seconds = time.time() - t0
        print(f"SIGTERM: exit {code} in {stop_seconds:.2f} s")
        for w in workers:
            w.join(timeout=5)
        print(f"stalled requests answered: {sorted(statuses)}")

        ok = health == 200 and health_seconds < 1.0 and code == 0 and stop_seconds < 10.0
        print("ok" if ok else "FAIL")
        return 0 if ok else 1
    finally:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
