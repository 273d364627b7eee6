"""Baseline for ``techne bench streams``: the smallest Faust app that forwards each message.

Run as ``python -m bench.streams_forward BOOTSTRAP SOURCE TARGET APP_ID``; it runs until killed.
"""

from __future__ import annotations

import asyncio
import sys

import faust

from streams.faust_config import faust_settings, quiet_logging


def main(bootstrap: str, source: str, target: str, app_id: str) -> None:
    asyncio.set_event_loop(asyncio.new_event_loop())
    app = faust.App(app_id, **faust_settings(bootstrap))
    src = app.topic(source, key_serializer="raw", value_serializer="raw")
    out = app.topic(target, key_serializer="raw", value_serializer="raw")

    @app.agent(src)  # type: ignore[untyped-decorator]
    async def forward(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            await out.send(key=event.message.key, value=event.message.value)

    worker = faust.Worker(app, loglevel="WARN", quiet=True)
    quiet_logging()
    worker.execute_from_commandline()


if __name__ == "__main__":
    main(*sys.argv[1:5])
