"""examples/wallet_bot.py signs in and receives events from a real hub."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from types import ModuleType

from tests.conftest import StartHub
from tests.plugins.auth.helpers import CLOSED
from tests.ticks import tick

BOT = Path(__file__).parents[3] / "examples" / "wallet_bot.py"


def load_bot() -> ModuleType:
    spec = importlib.util.spec_from_file_location("wallet_bot", BOT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_wallet_bot_signs_in_and_receives(start_hub: StartHub, tmp_path: Path) -> None:
    bot = load_bot()
    running = await start_hub(
        {**CLOSED, "access": {"anonymous": ["publish:*"]},
         "plugins": {"wallet": {"scopes": ["subscribe:ticks"]}}},
        enabled=["ticks", "sessions", "wallet"])
    key_file = tmp_path / "bot.pem"
    key = bot.load_key(key_file)
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert bot.address_of(bot.load_key(key_file)) == bot.address_of(key)
    lines: list[str] = []
    hub_url = str(running.http.make_url("")).rstrip("/")
    task = asyncio.ensure_future(bot.run(hub_url, key, ["ticks"], limit=2, out=lines.append))
    async with asyncio.timeout(5):
        while not any(line.startswith("subscribed to ticks") for line in lines):
            assert not task.done(), lines
            await asyncio.sleep(0.01)
        await running.publish(tick(1), tick(2))
        assert await task == 0
    assert lines[0] == f"signed in as {bot.address_of(key)} until " + lines[0].split()[-1]
    assert lines[-2:] == ['ticks #1 tick {"n": 1, "owner": "anyone"}',
                          'ticks #2 tick {"n": 2, "owner": "anyone"}']
