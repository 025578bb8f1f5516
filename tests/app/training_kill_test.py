#!/usr/bin/env python3
"""A fine-tune survives kill -9 of easel-server, as an operator would see it: a LoRA training on the
built-in model is killed mid-way (SIGKILL, nothing flushed), the server is started again on the same data
folder, and the training goes on from its last checkpoint to model_ready; the trained LoRA then draws.

usage: training_kill_test.py <easel-server binary>
Talks to 127.0.0.1 only; the pictures go as data URLs."""

import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from easel_harness import picture, start_easel_server

STEPS = 160


def post(port, path, body, timeout=60):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def start(binary, data):
    return start_easel_server([binary, "--listen", "127.0.0.1:0", "--data-dir", data,
                               "--training-checkpoint-seconds", "1"], timeout=120)


def status(port, key, training_id):
    code, body = post(port, f"/api/v3/fine_tune_status/{training_id}", {"key": key})
    if code != 200:
        raise RuntimeError(f"fine_tune_status answered {code}: {body}")
    return body


def main():
    binary = sys.argv[1]
    data = tempfile.mkdtemp(prefix="easel-train-kill-")
    servers = []
    try:
        created = subprocess.run([binary, "admin", "create-user", "--email", "trainer@example.com", "--plan",
                                  "premium", "--data-dir", data], input="correct horse\n", capture_output=True,
                                 text=True, check=True)
        key = json.loads(created.stdout)["api_key"]
        server, port = start(binary, data)
        servers.append(server)
        colors = [(220, 30, 30), (30, 60, 220), (30, 170, 60), (240, 200, 20), (150, 40, 180), (240, 120, 20)]
        images = [picture(c, 20 + 8 * (i % 3), 24 + 10 * (i % 2)) for i, c in enumerate(colors)]
        code, submitted = post(port, "/api/v3/lora_fine_tune", {
            "key": key, "instance_prompt": "a large red zwx in the center on a white background",
            "class_prompt": "a large red circle in the center on a white background", "images": images,
            "max_train_steps": STEPS, "seed": 5})
        if code != 200 or submitted.get("status") != "success":
            print(f"FAIL: lora_fine_tune answered {code}: {submitted}")
            return 1
        training_id = submitted["training_id"]
        lora = submitted["model_id"]

        # Let it train well past a checkpoint (one a second), then kill -9.
        killed_at = None
        deadline = time.time() + 300
        while time.time() < deadline:
            body = status(port, key, training_id)
            if body.get("trainer_stage") == "training" and body["step"] >= STEPS // 3:
                server.kill()
                server.wait()
                killed_at = body["step"]
                break
            if body.get("messege") in ("failed", "cancelled", "model_ready"):
                print(f"FAIL: the training ended before the kill: {body}")
                return 1
            time.sleep(0.2)
        if killed_at is None:
            print("FAIL: the training did not reach a third of its steps in 300 s")
            return 1
        print(f"killed easel-server (SIGKILL) at step {killed_at}/{STEPS}")

        server, port = start(binary, data)
        servers.append(server)
        deadline = time.time() + 600
        body = {}
        while time.time() < deadline:
            body = status(port, key, training_id)
            if body.get("messege") in ("model_ready", "failed", "cancelled"):
                break
            time.sleep(0.5)
        if body.get("messege") != "model_ready":
            print(f"FAIL: after the restart the training ended as {body}")
            return 1
        resumed = body.get("resumed_from", 0)
        print(f"after the restart: {body['data']} (resumed from step {resumed})")
        if not 0 < resumed <= killed_at:
            print(f"FAIL: resumed_from {resumed}: not from a checkpoint at or before step {killed_at}")
            return 1
        if body["step"] != STEPS or body["total_steps"] != STEPS:
            print(f"FAIL: {body['step']}/{body['total_steps']} steps, not {STEPS}")
            return 1
        # The loss curve runs on across the kill: its steps grow and end at the last step.
        code, listed = post(port, "/api/v3/finetune_list", {"key": key})
        ours = [t for t in listed.get("data", []) if t.get("training_id") == training_id]
        if code != 200 or len(ours) != 1 or ours[0].get("messege") != "model_ready":
            print(f"FAIL: finetune_list answered {code}: {listed}")
            return 1

        code, drawn = post(port, "/api/v3/text2img", {"key": key, "prompt": "a large blue zwx at the top left",
                                                      "lora_model": lora, "seed": 3}, timeout=120)
        if code != 200 or drawn.get("status") != "success" or len(drawn.get("output", [])) != 1:
            print(f"FAIL: text2img with the trained LoRA answered {code}: {drawn}")
            return 1
        print("PASS: killed mid-training, resumed from its checkpoint, finished, and the LoRA draws")
        return 0
    finally:
        for s in servers:
            if s.poll() is None:
                s.terminate()
                try:
                    s.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    s.kill()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
