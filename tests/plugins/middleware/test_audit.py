"""The audit plugin: every flow on record, hash-chained, verifiable, and free of secrets."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ocos_hub.cli import main
from ocos_middleware.audit import GENESIS, verify
from tests.conftest import RunningHub, StartHub
from tests.plugins.middleware.helpers import (
    ALICE_PASSWORD,
    ALICE_TOKEN,
    API_KEY_VALUE,
    AUTH,
    SECRETS,
    handshake,
)
from tests.ticks import tick


def audited(path: Path, **options: Any) -> dict[str, Any]:
    return {"plugins": {"audit": {"path": str(path), **options}}}


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ocos_hub", "audit", *args],
                          capture_output=True, text=True, timeout=60, check=False)


async def exercise(running: RunningHub) -> None:
    """A bit of everything a client can do, credentials in every place they may ride."""
    ws_path = running.hub.config.server.ws_path
    alice = await running.connect(params={"token": ALICE_TOKEN})
    assert alice.welcome["principal"]["id"] == "alice"
    assert (await handshake(running, Authorization="Bearer wrong-token-Xc1"))[0] == 401
    client = await running.connect()
    refused = await client.request("auth", method="password", user="alice",
                                   password="wrong-token-Xc1")
    assert refused["code"] == "invalid_credentials"
    assert (await client.request("auth", method="password", user="alice",
                                 password=ALICE_PASSWORD))["type"] == "ack"
    assert (await client.request("subscribe", topic="ticks"))["type"] == "ack"
    published = await client.request("publish", topic="ticks", event="tick", data={"n": 1})
    assert published["offset"] == 1
    await client.events(1)
    assert (await client.request("subscribe", topic="nope"))["code"] == "unknown_topic"
    assert (await client.request("unsubscribe", topic="ticks"))["type"] == "ack"
    await running.publish(tick(2), headers={"X-API-Key": API_KEY_VALUE})
    resp = await running.http.post(f"/api/v1/events?token={ALICE_TOKEN}",
                                   json={"topic": "ticks", "event": "tick", "data": {"n": 3}})
    assert resp.status == 200
    await client.ws.close()
    await alice.ws.close()
    assert ws_path == "/ws"


async def test_the_trail_records_each_flow(start_hub: StartHub, tmp_path: Path) -> None:
    trail = tmp_path / "audit.jsonl"
    running = await start_hub(audited(trail), plugins=[AUTH],
                              enabled=["ticks", "password", "audit"])
    await exercise(running)
    await running.http.close()  # shutdown drains the writer

    lines = records(trail)
    for line in lines:
        assert {"seq", "time", "event", "session", "principal", "remote", "request_id",
                "prev", "hash"} <= set(line)
        assert line["remote"] in ("127.0.0.1", None)
    sessions = {line["session"] for line in lines if line["event"] == "connect"}
    assert len(sessions) == 2
    alice_session, client_session = [line["session"] for line in lines
                                     if line["event"] == "connect"]
    flow = [(r["event"], r["principal"], r["request_id"], r.get("code"), r.get("topic"))
            for r in lines if r["session"] == client_session]
    assert flow == [
        ("connect", None, None, None, None),
        ("auth", None, 1, "invalid_credentials", None),
        ("auth", "alice", 2, None, None),
        ("subscribe", "alice", 3, None, "ticks"),
        ("publish", "alice", 4, None, "ticks"),
        ("error", "alice", 5, "unknown_topic", "nope"),
        ("unsubscribe", "alice", 6, None, "ticks"),
        ("disconnect", "alice", None, 1000, None),
    ]
    by_event = {(r["event"], r["session"]): r for r in lines}
    assert by_event[("connect", alice_session)]["principal"] == "alice"
    assert by_event[("connect", alice_session)]["method"] == "password"
    assert by_event[("disconnect", alice_session)]["code"] == 1000
    assert by_event[("publish", client_session)]["offset"] == 1
    assert by_event[("publish", client_session)]["kind"] == "tick"
    handshakes = [(r["via"], r["ok"], r["principal"], r["code"]) for r in lines
                  if r["event"] == "auth" and r["session"] is None]
    assert handshakes == [("handshake", True, "alice", None),
                          ("handshake", False, None, "invalid_credentials"),
                          ("http", True, "producer", None),
                          ("http", True, "alice", None)]
    refused = [r for r in lines if r["event"] == "handshake_refused"]
    assert [(r["code"], r["status"]) for r in refused] == [("invalid_credentials", 401)]
    http = [(r["method"], r["path"], r["status"], r["principal"]) for r in lines
            if r["event"] == "http"]
    assert http == [("POST", "/api/v1/events", 200, "producer"),
                    ("POST", "/api/v1/events", 200, "alice")]

    text = trail.read_text()
    for secret in SECRETS:
        assert secret not in text
    assert "token=" not in text and "password" not in text.replace('"method":"password"', "")


async def test_the_chain_verifies_and_a_one_byte_edit_is_caught(
    start_hub: StartHub, tmp_path: Path,
) -> None:
    trail = tmp_path / "audit.jsonl"
    running = await start_hub(audited(trail), plugins=[AUTH],
                              enabled=["ticks", "password", "audit"])
    await exercise(running)
    await running.http.close()
    lines = records(trail)
    assert lines[0]["prev"] == GENESIS
    assert all(b["prev"] == a["hash"] for a, b in itertools.pairwise(lines))
    assert [line["seq"] for line in lines] == list(range(1, len(lines) + 1))

    verdict = verify(trail)
    assert verdict.ok and verdict.records == len(lines) and verdict.head == lines[-1]["hash"]
    done = cli("verify", str(trail))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{trail}: ok, {len(lines)} records from ")
    assert done.stdout.rstrip().endswith(f"head {lines[-1]['hash']}")

    original = trail.read_bytes()
    starts = [0, *(i + 1 for i, byte in enumerate(original) if byte == ord("\n"))]
    for number in (1, 5, len(lines)):  # first, a middle one, the last
        data = bytearray(original)
        at = original.index(b'"event":"', starts[number - 1]) + len('"event":"')
        data[at] = ord("X") if data[at] != ord("X") else ord("Y")
        trail.write_bytes(bytes(data))
        verdict = verify(trail)
        assert (verdict.bad_line, verdict.records) == (number, number - 1)
        assert verdict.problem.startswith("content does not match its hash")
    done = cli("verify", str(trail))  # still the last line edited
    assert done.returncode == 1
    assert done.stderr.startswith(f"{trail}: line {len(lines)}: content does not match "
                                  "its hash")
    # a removed line breaks the link of the one after it
    kept = original.split(b"\n")
    trail.write_bytes(b"\n".join(kept[:3] + kept[4:]))
    verdict = verify(trail)
    assert verdict.bad_line == 4 and verdict.problem.startswith("does not follow line 3")


def test_verify_command_on_a_missing_file(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "verify", str(tmp_path / "missing.jsonl")]) == 2
    assert "cannot read" in capsys.readouterr().err


async def test_a_restarted_hub_continues_the_chain(start_hub: StartHub, tmp_path: Path) -> None:
    trail = tmp_path / "audit.jsonl"
    first = await start_hub(audited(trail), enabled=["ticks", "audit"])
    await (await first.connect()).ws.close()
    await first.http.close()
    head = records(trail)[-1]
    second = await start_hub(audited(trail), enabled=["ticks", "audit"])
    await (await second.connect()).ws.close()
    await second.http.close()
    lines = records(trail)
    assert len(lines) == 4
    assert lines[2]["prev"] == head["hash"] and lines[2]["seq"] == head["seq"] + 1
    assert verify(trail).ok
