"""When a create counts as sent: the moment its request is about to be written, not before.

The aiohttp sender marks it once the connection is acquired; a create still waiting for a
connection (the pool busy with other calls) has sent nothing, and a run killed there may
submit it again."""

from __future__ import annotations

import asyncio

from akool_flows.api import AsyncAkoolClient
from akool_flows.api.sending import when_create_sent


async def test_a_create_waiting_for_a_connection_is_not_sent_and_one_that_leaves_is_marked_once(sandbox):
    sandbox.faults.slow(1.5, next=1, path_prefix="/api/open/v3/content/analysis/infobyid")
    marks: list[str] = []
    async with AsyncAkoolClient(base_url=sandbox.base_url, token=sandbox.token, max_connections=1) as client:
        hog = asyncio.create_task(client.status("moderation", "65f8180c24d9989e93dde301"))
        await asyncio.sleep(0.3)  # the only connection is now held by the slow status call

        async def create(name: str) -> None:
            with when_create_sent(lambda: marks.append(name)):
                await client.submit("moderation", content="hello there", type=4, language="en")

        waiting = asyncio.create_task(create("waiting"))
        await asyncio.sleep(0.5)
        assert marks == []  # queued behind the pool: nothing written, nothing marked
        waiting.cancel()  # the run dies here
        await asyncio.gather(waiting, return_exceptions=True)
        await asyncio.gather(hog, return_exceptions=True)
        assert sandbox.create_count() == 0 and marks == []
        await create("sent")
    assert marks == ["sent"] and sandbox.create_count() == 1
