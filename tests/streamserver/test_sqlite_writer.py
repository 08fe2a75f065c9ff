"""The SQLite store's writer process (streamserver/store/sqlite_writer.py): a real child
process on a real file. What it must survive: its own death, Ctrl-C reaching the whole
process group, and the store closing."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from commerce.plan import MoveStock, Plan
from streamserver.store.sqlite import SqliteStore
from streamserver.store.sqlite_writer import WriterLost
from tests.contract.world import World, new_id


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(tmp_path / "x.sqlite3")
    await store.open()
    yield store
    await store.close()


def writer_of(store: SqliteStore) -> int:
    pid = store.writer_pid
    assert pid is not None
    return pid


async def test_plans_are_applied_by_a_child_process_and_survive_a_reopen(
    store: SqliteStore, tmp_path: Path
) -> None:
    world = await World.create(store)
    await world.receive(world.near, world.tea, 7)
    child = writer_of(store)
    assert child != os.getpid()
    await store.close()
    with contextlib.suppress(psutil.NoSuchProcess):  # already gone
        psutil.Process(child).wait(timeout=10)  # raises TimeoutExpired if it stays
    reopened = SqliteStore(tmp_path / "x.sqlite3")
    await reopened.open()
    try:
        levels = await reopened.stock(world.merchant)
        assert levels[world.near.id, world.tea.id].received == 7
    finally:
        await reopened.close()
    await store.open()  # the fixture closes it again


async def test_a_dead_writer_fails_only_the_write_it_held_and_the_next_one_works(
    store: SqliteStore,
) -> None:
    world = await World.create(store)
    await world.receive(world.near, world.tea, 10)
    shopper = new_id("u_")
    assert await world.level(world.near, world.tea) == (10, 10, 0, 0)

    child = writer_of(store)
    os.kill(child, signal.SIGSTOP)  # it holds the next write without answering
    planned = await world.plan(world.command(shopper, [(world.tea, 1)]))
    held = asyncio.create_task(world.apply(planned.plan))  # type: ignore[union-attr]
    await until(lambda: store.batches_in_writer == 1)
    os.kill(child, signal.SIGKILL)
    with pytest.raises(WriterLost):
        await held

    # Another child takes the next write; the ordering views are read afresh.
    order = await world.place(world.command(shopper, [(world.tea, 2)]))
    assert order.state == "placed"
    assert writer_of(store) != child
    assert await world.level(world.near, world.tea) == (10, 8, 2, 0)


async def test_a_writer_that_died_idle_is_replaced(store: SqliteStore) -> None:
    world = await World.create(store)
    await world.receive(world.near, world.tea, 5)
    child = writer_of(store)
    os.kill(child, signal.SIGKILL)
    psutil.Process(child).wait(timeout=10)
    # The next write may still meet the dead pipe before the loop has seen it close:
    # then it fails as unknown, like any write the child held; the one after works.
    received = 5
    try:
        await world.receive(world.near, world.tea, 1)
        received += 1
    except WriterLost:
        pass
    await world.receive(world.near, world.tea, 2)
    assert writer_of(store) != child
    assert await world.level(world.near, world.tea) == (received + 2,) * 2 + (0, 0)


async def until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Polls: nothing signals that a batch has been written to the pipe."""
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 (no event for "written to the pipe")
            await asyncio.sleep(0.001)


async def test_ctrl_c_in_the_terminal_does_not_stop_the_writer(store: SqliteStore) -> None:
    world = await World.create(store)
    await world.receive(world.near, world.tea, 1)
    os.kill(writer_of(store), signal.SIGINT)  # what a terminal sends the process group
    os.kill(writer_of(store), signal.SIGTERM)
    await world.receive(world.near, world.tea, 2)
    assert await world.level(world.near, world.tea) == (3, 3, 0, 0)


async def test_a_plan_that_cannot_cross_to_the_writer_fails_alone(store: SqliteStore) -> None:
    world = await World.create(store)
    not_a_move: Any = lambda: None  # noqa: E731 (a value pickle cannot send)
    unpicklable = Plan((), (MoveStock(world.near.id, world.tea.id, 1, not_a_move),))
    with pytest.raises((AttributeError, pickle.PicklingError)):  # what pickle raises varies
        await world.apply(unpicklable)
    await world.receive(world.near, world.tea, 4)  # the write loop carries on
    assert await world.level(world.near, world.tea) == (4, 4, 0, 0)
