"""Background tasks of the hub and its plugins: stopping them within a bound."""

from __future__ import annotations

import asyncio


def cancelling() -> bool:
    """Whether the running task is being cancelled. Client libraries may turn a
    cancellation that lands mid-request into a connection error; a loop that retries on
    those errors asks this first, so that it never outlives its cancellation."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def stop_tasks(tasks: list[asyncio.Task[None]], grace: float | None = None) -> None:
    """Cancel background tasks and wait for them, at most `grace` seconds (None: until
    they end). The list is emptied."""
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=grace)
    tasks.clear()
