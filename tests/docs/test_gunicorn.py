"""docs/deployment.md's gunicorn command serves a working hub from `app_from_env`."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from pathlib import Path

import aiohttp

from tests.docs.helpers import ROOT

CONFIG = """
[plugins]
enabled = ["blocks"]

[access]
anonymous = ["subscribe:blocks", "publish:blocks"]
"""
BLOCK = {"height": 5, "hash": "0xabc"}


async def test_gunicorn_runs_the_app_factory(tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    config.write_text(CONFIG)
    env = {**os.environ, "OCOS_HUB_CONFIG": str(config), "OCOS_HUB__SERVER__HEARTBEAT": "5"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gunicorn", "ocos_hub.app:app_from_env",
        "--worker-class", "aiohttp.GunicornWebWorker", "--bind", "127.0.0.1:0",
        "--workers", "1", "--graceful-timeout", "10", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert proc.stderr is not None
    log: list[str] = []
    try:
        base = None
        while base is None:  # gunicorn prints the address it bound, then boots the worker
            line = (await asyncio.wait_for(proc.stderr.readline(), 60)).decode()
            assert line, "gunicorn exited:\n" + "".join(log)
            log.append(line)
            found = re.search(r"Listening at: (http://127\.0\.0\.1:\d+)", line)
            base = found.group(1) if found else None
        async with aiohttp.ClientSession() as http:
            while True:  # the worker needs a moment after the master's bind
                try:
                    async with http.get(f"{base}/readyz") as ready:
                        if ready.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            async with http.ws_connect(f"{base}/ws", protocols=["ocos.v1"]) as ws:
                welcome = await ws.receive_json(timeout=10)
                assert welcome["type"] == "welcome" and welcome["topics"] == ["blocks"]
                await ws.send_json({"type": "subscribe", "id": 1, "topic": "blocks"})
                assert (await ws.receive_json(timeout=10))["type"] == "ack"
                async with http.post(f"{base}/api/v1/events", json={
                        "topic": "blocks", "event": "block.finalized", "data": BLOCK}) as done:
                    assert done.status == 200, await done.text()
                event = await ws.receive_json(timeout=10)
                assert (event["event"], event["data"]) == ("block.finalized", BLOCK)
            async with http.get(f"{base}/asyncapi.json") as docs:
                assert "events.blocks" in json.loads(await docs.text())["operations"]
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)
        rest = await proc.stderr.read()
        log.append(rest.decode())
    assert proc.returncode == 0, "".join(log)
