#!/usr/bin/env python3
"""Two easel-server processes on one PostgreSQL, as an operator runs them: the real binary, the built-in
model, a throwaway PostgreSQL cluster (Debian's initdb/postgres in a temp folder), one shared data dir
(the images folder and server key, as on a shared volume).

1. 200 text2img jobs from 20 accounts, sent to both servers in turn, all at once: every job succeeds
   exactly once (one attempt, one usage row, one image whose file is stored), every account is charged
   exactly its 10 images, and both servers did work.
2. kill -9 of the server running a long job: the other server runs it again after the lease, under the
   same image link, and the account is charged once.
Prints the throughput of the 200 jobs (images per second on 2 servers sharing this machine's cores).

usage: scale_out_test.py <easel-server binary> [--servers N]
  --servers N: only part 1, on N servers (throughput of 1 vs 2 servers on this machine)
Talks to 127.0.0.1 only."""

import ctypes
import glob
import json
import os
import pwd
import re
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
from concurrent.futures import ThreadPoolExecutor

ACCOUNTS = 20
JOBS_PER_ACCOUNT = 10
LEASE_SECONDS = 3


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Postgres:
    """A cluster in a temp folder, run as the postgres user when we are root; dies with this process."""

    def __init__(self):
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not bins:
            raise SystemExit("FAIL: PostgreSQL's server binaries are missing (Debian package postgresql)")
        self.bin = os.path.dirname(bins[-1])
        self.dir = tempfile.mkdtemp(prefix="easel-scale-pg-")
        self.uid = self.gid = None
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            self.uid, self.gid = pw.pw_uid, pw.pw_gid
            os.chown(self.dir, self.uid, self.gid)
        data = os.path.join(self.dir, "data")
        subprocess.run([f"{self.bin}/initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"],
                       preexec_fn=self._demote, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.port = free_port()
        self.proc = subprocess.Popen([f"{self.bin}/postgres", "-D", data, "-p", str(self.port), "-c",
                                      "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.dir}", "-c",
                                      "fsync=off", "-c", "synchronous_commit=off"],
                                     preexec_fn=lambda: self._demote(die_with_parent=True),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.sql("SELECT 1") == "1":
                return
            time.sleep(0.1)
        raise SystemExit("FAIL: PostgreSQL did not start")

    def _demote(self, die_with_parent=False):
        if self.uid is not None:
            os.setgid(self.gid)
            os.setuid(self.uid)
        if die_with_parent:
            ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG, after setuid

    def sql(self, query):
        r = subprocess.run([f"{self.bin}/psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-At",
                            "-c", query], capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else None

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def request(port, method, path, body=None, timeout=60):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return 0, b""


def start_server(binary, data, database):
    proc = subprocess.Popen([binary, "--listen", "127.0.0.1:0", "--data-dir", data, "--database", database,
                             "--lease-seconds", str(LEASE_SECONDS), "--sync-wait", "0", "--access-log", "off"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 180
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if match:
            threading.Thread(target=lambda: proc.stdout.read(), daemon=True).start()  # keep the pipe drained
            return proc, int(match.group(1))
    proc.kill()
    raise SystemExit("FAIL: easel-server did not start")


def images_generated(port, admin_key):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {admin_key}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        match = re.search(r"^easel_images_generated_total (\S+)$", r.read().decode(), re.M)
    return int(float(match.group(1))) if match else -1


def wait_done(ports, key, job_id, timeout):
    """Polls fetch on any live server until the job ends; returns its last answer."""
    deadline = time.time() + timeout
    answer = {}
    while time.time() < deadline:
        for port in ports:
            status, body = request(port, "POST", "/api/v6/images/fetch", {"key": key, "request_id": job_id})
            if status == 200:
                answer = json.loads(body)
                if answer.get("status") in ("success", "error", "failed"):
                    return answer
                break
        time.sleep(0.2)
    return answer


def main():
    binary = sys.argv[1]
    count = int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[2] == "--servers" else 2
    pg = Postgres()
    data = tempfile.mkdtemp(prefix="easel-scale-")
    servers = []
    failures = []

    def check(ok, what):
        print(("ok   " if ok else "FAIL ") + what)
        if not ok:
            failures.append(what)

    try:
        keys = []
        for i in range(ACCOUNTS):
            created = subprocess.run([binary, "admin", "create-user", "--email", f"user{i}@example.com", "--plan",
                                      "standard", "--data-dir", data, "--database", pg.url],
                                     input="correct horse\n", capture_output=True, text=True, check=True)
            keys.append(json.loads(created.stdout)["api_key"])
        admin = subprocess.run([binary, "admin", "create-user", "--email", "ops@example.com", "--plan", "premium",
                                "--admin", "--data-dir", data, "--database", pg.url],
                               input="correct horse\n", capture_output=True, text=True, check=True)
        admin_key = json.loads(admin.stdout)["api_key"]
        servers = [start_server(binary, data, pg.url) for _ in range(count)]
        ports = [port for _, port in servers]

        # 1. 200 jobs, both servers, all at once.
        def submit(n):
            key = keys[n % ACCOUNTS]
            status, body = request(ports[n % len(ports)], "POST", "/api/v6/images/text2img",
                                   {"key": key, "prompt": f"a red circle on blue, {n}", "width": 64, "height": 64,
                                    "num_inference_steps": 8, "seed": n})
            return key, status, json.loads(body) if body else {}

        t0 = time.time()
        with ThreadPoolExecutor(32) as pool:
            submitted = list(pool.map(submit, range(ACCOUNTS * JOBS_PER_ACCOUNT)))
        check(all(s == 200 and "id" in b for _, s, b in submitted),
              f"200 submissions accepted ({sum(1 for _, s, _ in submitted if s == 200)})")
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda kb: wait_done(ports, kb[0], kb[2].get("id"), 600), submitted))
        seconds = time.time() - t0
        check(all(a.get("status") == "success" and len(a.get("output", [])) == 1 for a in answers),
              "every job succeeded with one image")
        print(f"throughput: {len(answers)} images of 64x64, 8 steps, in {seconds:.1f} s = "
              f"{len(answers) / seconds:.2f} images/s on {len(ports)} server(s)")
        rows = pg.sql("SELECT COUNT(*), COALESCE(MAX(attempts), 0), COUNT(DISTINCT lease_owner) FROM jobs "
                      "WHERE status = 'succeeded'")
        check(rows is not None and rows.split("|")[:2] == ["200", "1"], f"200 succeeded rows, one attempt each ({rows})")
        check(pg.sql("SELECT COUNT(*) FROM usage") == "200", "one usage row per job")
        check(pg.sql("SELECT COUNT(*) FROM images") == "200", "one image row per job")
        charged = pg.sql("SELECT string_agg(DISTINCT images_used::text, ',') FROM users WHERE is_admin = 0")
        check(charged == str(JOBS_PER_ACCOUNT), f"every account charged exactly {JOBS_PER_ACCOUNT} images ({charged})")
        stored = sum(len(files) for _, _, files in os.walk(os.path.join(data, "files")))
        check(stored == 200, f"200 image files stored ({stored})")
        link = answers[0]["output"][0]
        status, png = request(ports[-1], "GET", link[link.index("/images/"):] if "/images/" in link else "/")
        check(status == 200 and png[:4] == b"\x89PNG", f"an image link answers on the other server ({status})")
        made = [images_generated(port, admin_key) for port in ports]
        check(sum(made) == 200 and min(made) > 0, f"every server generated: {' + '.join(map(str, made))} images")
        if len(ports) < 2:
            print("ok" if not failures else "FAIL")
            return 0 if not failures else 1

        # 2. kill -9 of the server that runs a long job.
        key = keys[0]
        status, body = request(ports[0], "POST", "/api/v6/images/text2img",
                               {"key": key, "prompt": "a long one", "width": 64, "height": 64,
                                "num_inference_steps": 150, "seed": 7})
        job = json.loads(body)
        future = job.get("future_links", [""])[0]
        owner = None
        deadline = time.time() + 60
        while owner is None and time.time() < deadline:
            owner = pg.sql(f"SELECT lease_owner FROM jobs WHERE id = {job['id']} AND status = 'running'") or None
            time.sleep(0.05)
        check(owner is not None, f"the long job runs on a server ({owner})")
        victim = next((i for i, (proc, _) in enumerate(servers) if owner and f":{proc.pid}:" in owner), None)
        check(victim is not None, "its worker id names the server process")
        if victim is not None:
            servers[victim][0].send_signal(signal.SIGKILL)
            servers[victim][0].wait()
            killed_at = time.time()
            survivor = ports[1 - victim]
            answer = wait_done([survivor], key, job["id"], 300)
            check(answer.get("status") == "success", f"the survivor finished it ({answer.get('status')}) "
                  f"{time.time() - killed_at:.1f} s after the kill")
            check(answer.get("output", [""])[0].split("/images/")[-1] == future.split("/images/")[-1],
                  "under the link promised at submission")
            attempts = pg.sql(f"SELECT attempts FROM jobs WHERE id = {job['id']}")
            check(attempts == "2", f"two attempts ({attempts})")
            used = pg.sql("SELECT images_used FROM users WHERE email = 'user0@example.com'")
            check(used == str(JOBS_PER_ACCOUNT + 1), f"charged once ({used})")
            check(pg.sql(f"SELECT COUNT(*) FROM usage WHERE request_id = {job['id']}") == "1", "one usage row")
    finally:
        for proc, _ in servers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        pg.stop()
        shutil.rmtree(data, ignore_errors=True)
    print("ok" if not failures else f"FAIL: {len(failures)} check(s)")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
