#!/usr/bin/env python3
"""A client of the AUTOMATIC1111 web UI API, written against A1111's documented schema (/docs of a
webui started with --api), run against a running Easel server: sd-models, samplers, schedulers,
options, txt2img, img2img, inpaint, png-info, progress and interrupt, with HTTP Basic (as
--api-auth clients send it) and Bearer keys.

usage: a1111_client_test.py [BASE_URL [API_KEY]]
       (or EASEL_URL / EASEL_API_KEY in the environment), e.g.
       python3 tests/clients/a1111_client_test.py http://127.0.0.1:7860 KEY
EASEL_A1111_SIZE (default 64): the width and height asked for (the built-in model draws 64x64).
Needs only Debian's python3 and python3-requests; starts nothing itself. Exit status 0 when all pass."""

import base64
import json
import os
import struct
import sys
import threading
import time
import zlib

try:
    import requests
except ImportError:
    print("FAIL: the requests module is missing (apt install python3-requests)")
    sys.exit(2)

TIMEOUT = 300  # seconds for one synchronous generation


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


def png(width, height, pixel):
    """A PNG of one RGB colour per pixel: pixel(x, y) -> (r, g, b)."""
    rows = b"".join(b"\x00" + bytes(c for x in range(width) for c in pixel(x, y)) for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def png_size(data):
    check(data[:8] == b"\x89PNG\r\n\x1a\n", "an image is not a PNG")
    return struct.unpack(">II", data[16:24])


class Client:
    def __init__(self, base, key):
        self.base = base.rstrip("/")
        self.basic = requests.Session()
        self.basic.auth = ("easel", key)  # HTTP Basic: the key is the password
        self.bearer = requests.Session()
        self.bearer.headers["Authorization"] = "Bearer " + key

    def get(self, path, session=None, **kw):
        r = (session or self.basic).get(self.base + "/sdapi/v1/" + path, timeout=60, **kw)
        check(r.status_code == 200, f"GET {path}: HTTP {r.status_code}: {r.text[:300]}")
        return r.json()

    def post(self, path, body, session=None, expect=200, timeout=TIMEOUT):
        r = (session or self.basic).post(self.base + "/sdapi/v1/" + path, json=body, timeout=timeout)
        check(r.status_code == expect, f"POST {path}: HTTP {r.status_code} (expected {expect}): {r.text[:300]}")
        return r.json()


def images_of(answer, count, size):
    """Checks an A1111 txt2img/img2img answer; returns its PNGs and the parsed info."""
    for field in ("images", "parameters", "info"):
        check(field in answer, f"the answer has no '{field}'")
    check(isinstance(answer["info"], str), "info is not a JSON string")
    info = json.loads(answer["info"])
    check(len(answer["images"]) == count, f"{len(answer['images'])} images, expected {count}")
    pngs = [base64.b64decode(i) for i in answer["images"]]
    for p in pngs:
        check(png_size(p) == (size, size), f"an image is {png_size(p)}, expected {size}x{size}")
    check(len(info.get("infotexts", [])) == count, "info.infotexts does not have one text per image")
    return pngs, info


def run(base, key):
    size = int(os.environ.get("EASEL_A1111_SIZE", "64"))
    c = Client(base, key)

    # Authentication: a wrong key is refused.
    r = requests.get(c.base + "/sdapi/v1/sd-models", auth=("easel", "not-a-key"), timeout=30)
    check(r.status_code == 401, f"a wrong key got HTTP {r.status_code}")
    print("ok  a wrong key is 401")

    models = c.get("sd-models", session=c.bearer)
    check(models, "sd-models is empty")
    for field in ("title", "model_name", "hash", "sha256", "filename", "config"):
        check(field in models[0], f"sd-models entries have no '{field}'")
    title = models[0]["title"]
    print(f"ok  sd-models: {[m['title'] for m in models]}")

    samplers = c.get("samplers")
    names = [s["name"] for s in samplers]
    check(all("aliases" in s and "options" in s for s in samplers), "samplers lack aliases/options")
    sampler = "Euler a" if "Euler a" in names else names[0]
    schedulers = c.get("schedulers")
    labels = [s["label"] for s in schedulers]
    check("Karras" in labels, f"no Karras scheduler in {labels}")
    print(f"ok  samplers ({len(names)}) and schedulers {labels}")

    c.post("options", {"sd_model_checkpoint": title})
    options = c.get("options")
    check(options.get("sd_model_checkpoint") == title, f"options say {options.get('sd_model_checkpoint')}")
    print("ok  options: sd_model_checkpoint")

    prompt = "a red circle on a blue background"
    answer = c.post("txt2img", {"prompt": prompt, "negative_prompt": "", "seed": 1234, "steps": 8, "cfg_scale": 5,
                                "width": size, "height": size, "batch_size": 2, "n_iter": 1,
                                "sampler_name": sampler, "scheduler": "Automatic", "restore_faces": False,
                                "override_settings": {"sd_model_checkpoint": title}, "alwayson_scripts": {}},
                    session=c.bearer)
    pngs, info = images_of(answer, 2, size)
    check(info["seed"] == 1234 and info["all_seeds"][:2] == [1234, 1235], f"seeds: {info['seed']}, {info['all_seeds']}")
    check(info["prompt"] == prompt, "info.prompt differs from the prompt sent")
    print("ok  txt2img: 2 PNGs, seeds 1234/1235")

    meta = c.post("png-info", {"image": "data:image/png;base64," + base64.b64encode(pngs[0]).decode()})
    check(meta["info"] == info["infotexts"][0], "png-info's info differs from the infotext of the answer")
    check(meta["parameters"].get("Prompt", "").startswith(prompt), f"png-info parameters: {meta['parameters']}")
    print("ok  png-info reads the parameters back")

    init = "data:image/png;base64," + base64.b64encode(pngs[0]).decode()
    answer = c.post("img2img", {"prompt": prompt, "init_images": [init], "denoising_strength": 0.6, "steps": 8,
                                "width": size, "height": size, "seed": 5, "sampler_name": sampler})
    images_of(answer, 1, size)
    print("ok  img2img")

    mask = png(size, size, lambda x, y: (255,) * 3 if size // 4 <= x < 3 * size // 4 else (0,) * 3)
    answer = c.post("img2img", {"prompt": "a green square", "init_images": [init],
                                "mask": base64.b64encode(mask).decode(), "inpainting_fill": 1,
                                "inpaint_full_res": False, "mask_blur": 4, "denoising_strength": 0.9, "steps": 8,
                                "width": size, "height": size, "batch_size": 2})
    images_of(answer, 2, size)
    print("ok  inpaint")

    r = c.basic.post(c.base + "/sdapi/v1/txt2img", json={"prompt": "x", "sampler_name": "No Such Sampler"},
                     timeout=60)
    check(r.status_code == 422 and "sampler" in r.text, f"a bad sampler got HTTP {r.status_code}: {r.text[:200]}")
    print("ok  a bad sampler is 422")

    # progress and interrupt: a long job in the background, watched and then stopped.
    result = {}

    def long_job():
        try:
            result["answer"] = c.post("txt2img", {"prompt": "a slow one", "steps": 100, "width": size, "height": size,
                                                  "batch_size": 4}, session=c.bearer)
        except Exception as e:  # reported below
            result["error"] = e

    worker = threading.Thread(target=long_job)
    worker.start()
    seen = None
    deadline = time.time() + 120
    while time.time() < deadline and worker.is_alive():
        p = c.get("progress")
        check(0.0 <= p["progress"] <= 1.0, f"progress {p['progress']} is out of 0..1")
        if p["state"]["job_count"] >= 1 and p["state"]["sampling_step"] > 0:
            seen = p
            break
        time.sleep(0.05)
    check(seen is not None, "progress never showed the running job")
    print(f"ok  progress: {seen['progress']:.2f}, step {seen['state']['sampling_step']}"
          f"/{seen['state']['sampling_steps']}, preview: {seen['current_image'] is not None}")
    c.post("interrupt", {})
    worker.join(TIMEOUT)
    check("error" not in result, f"the interrupted txt2img failed: {result.get('error')}")
    check(len(result["answer"]["images"]) < 4, "the interrupted job still made all its images")
    check(c.get("progress")["state"]["job_count"] == 0, "a job is still queued or running after interrupt")
    print("ok  interrupt stopped the job")


def main():
    base = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("EASEL_URL", "")
    key = sys.argv[2] if len(sys.argv) > 2 else os.environ.get("EASEL_API_KEY", "")
    if not base or not key:
        print(__doc__)
        return 2
    try:
        run(base, key)
    except (Failure, requests.RequestException, ValueError, KeyError) as e:
        print(f"FAIL: {e}")
        return 1
    print("all A1111 client checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
