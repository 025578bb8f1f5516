"""What the Python tests of the real easel-server share: starting it on a free loopback port, free ports,
and small PNG pictures to send as data URLs. Talks to 127.0.0.1 only."""

import base64
import re
import socket
import struct
import subprocess
import threading
import time
import zlib


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_easel_server(args, env=None, timeout=180):
    """Runs `args` (the easel-server binary and its options, --listen 127.0.0.1:PORT among them) and waits
    for its "listening on" line; returns (process, port). Its output is drained in the background. Raises
    RuntimeError when it exits or does not listen in `timeout` seconds."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.time() + timeout
    output = []
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        output.append(line)
        match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if match:
            threading.Thread(target=lambda: proc.stdout.read(), daemon=True).start()  # keep the pipe drained
            return proc, int(match.group(1))
    proc.kill()
    proc.wait()
    raise RuntimeError("easel-server did not start:\n" + "".join(output[-20:]))


def png(width, height, pixel):
    """An RGB PNG whose pixel (x, y) is pixel(x, y)."""
    rows = b"".join(b"\x00" + b"".join(bytes(pixel(x, y)) for x in range(width)) for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def picture(color, cx, cy):
    """A disc with a notch cut from its top on a white 64x64 background, as a data URL: a picture the
    built-in model never saw."""
    def pixel(x, y):
        inside = (x - cx) ** 2 + (y - cy) ** 2 < 14 ** 2 and not (abs(x - cx) < 4 and y < cy - 6)
        return color if inside else (255, 255, 255)
    return "data:image/png;base64," + base64.b64encode(png(64, 64, pixel)).decode()
