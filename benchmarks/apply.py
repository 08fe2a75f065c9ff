"""The store's own apply step: placing plans applied straight through the Store port.

    .venv/bin/python benchmarks/apply.py --store redis|sqlite [--json]
        [--plans N] [--stock S] [--concurrency K]
        [--durability default|strict|relaxed|none]

No HTTP: set-up goes through the store (a merchant, a branch, one SKU, S units received,
--shoppers shoppers topped up with stored value), then N placing plans are made with the
core (commerce.orders.place_order, from one ordering view each shopper) and applied by K
concurrent callers, as the purchase handler does: the Redis store sends the plans of a
loop tick in one script call, the SQLite store's writer process commits a batch in one
transaction. Half of the plans pay 1.00 with stored value (a hold), half pay cash. With
S < N, the last N - S plans are refused SOLD_OUT by the stock guard.

Only the apply calls are timed. Checked after (the "checks" in the JSON):
- every plan was answered Applied or refused SOLD_OUT; exactly min(N, S) applied;
- the branch's stock: received = S, reserved = applied, available = S - applied >= 0;
- every shopper's stored value: balance = top-up, held = 1.00 x its applied
  stored-value plans; all account balances sum to zero.

Redis is a throwaway `redis-server` on a free port, with AOF everysec (default),
always (strict) or none; SQLite a fresh file with synchronous FULL (default, strict: the
server's default) or NORMAL (relaxed).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.flashsale import DURABILITIES, SQLITE_SYNC, start_redis, stop_process
from commerce import ledger
from commerce.catalog import Branch, Merchant, Product, Sku, Terms
from commerce.ids import (
    Amount,
    BranchId,
    MerchantId,
    OrderId,
    ProductId,
    ShopperId,
    SkuId,
)
from commerce.orders import FulfillmentKind, PlaceOrder, Planned, place_order
from commerce.plan import MoveStock, Plan, PostTransfer, Reason, Refusal, StockMove
from streamserver.ids import new_id, new_order_id
from streamserver.store.port import Applied, Store
from streamserver.store.redis import RedisStore
from streamserver.store.sqlite import SqliteStore

TARGET_REDIS_PLANS_PER_S = 20_000  # the issue
PRICE = Amount(990)
STORED_VALUE_PART = Amount(100)
TOP_UP = 10**9


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def set_up(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    merchant = MerchantId(new_id("merchant"))
    await store.create_merchant(Merchant(merchant, "Bench Tea"), new_id("merchant"))
    await store.set_terms(merchant, Terms(commission_rate_bp=1000, cashback_rate_bp=200))
    branch = Branch(id=BranchId(new_id("branch")), merchant=merchant, name="Xuhui")
    await store.create_branch(branch)
    product = Product(id=ProductId(new_id("product")), merchant=merchant, name="Tea")
    await store.put_product(product)
    sku = Sku(
        id=SkuId(new_id("sku")), product=product.id, merchant=merchant, name="Tea", price=PRICE
    )
    await store.put_sku(sku)
    receipt = Plan((), (MoveStock(branch.id, sku.id, args.stock, StockMove.RECEIVE),))
    assert isinstance(await store.apply(merchant, receipt), Applied)
    shoppers = [ShopperId(new_id("shopper")) for _ in range(args.shoppers)]
    for shopper in shoppers:
        top_up = ledger.top_up_transfer(new_id("order"), shopper, Amount(TOP_UP), now_ms())
        assert isinstance(await store.apply(merchant, Plan((), (PostTransfer(top_up),))), Applied)
    return {"merchant": merchant, "branch": branch, "sku": sku, "shoppers": shoppers}


async def make_plans(store: Store, world: dict[str, Any], n: int) -> list[tuple[Plan, bool]]:
    merchant, branch, sku = world["merchant"], world["branch"], world["sku"]
    views = {}
    for shopper in world["shoppers"]:
        views[shopper] = await store.ordering_view(merchant, branch.id, shopper, [sku.id])
    plans: list[tuple[Plan, bool]] = []
    at = now_ms()
    for i in range(n):
        shopper = world["shoppers"][i % len(world["shoppers"])]
        pays_stored_value = i % 2 == 0
        cmd = PlaceOrder(
            order=OrderId(new_order_id()),
            merchant=merchant,
            branch=branch.id,
            shopper=shopper,
            lines=((sku.id, 1),),
            fulfillment=FulfillmentKind.PICKUP,
            stored_value=STORED_VALUE_PART if pays_stored_value else Amount(0),
            key=new_id("order"),
            body_digest=new_id("order"),
            pickup_code="135790",
            destination=None,
            address="",
        )
        planned = place_order(cmd, views[shopper], at)
        assert isinstance(planned, Planned), planned
        plans.append((planned.plan, pays_stored_value))
    return plans


async def apply_all(
    store: Store, merchant: MerchantId, plans: list[tuple[Plan, bool]], concurrency: int
) -> tuple[list[Any], float]:
    results: list[Any] = [None] * len(plans)
    next_index = iter(range(len(plans)))

    async def caller() -> None:
        for i in next_index:
            results[i] = await store.apply(merchant, plans[i][0])

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return results, time.perf_counter() - started


async def check(
    store: Store,
    world: dict[str, Any],
    plans: list[tuple[Plan, bool]],
    results: list[Any],
    args: argparse.Namespace,
) -> dict[str, Any]:
    merchant, branch, sku = world["merchant"], world["branch"], world["sku"]
    outcomes = collections.Counter(
        "applied"
        if isinstance(r, Applied)
        else r.reason.value
        if isinstance(r, Refusal)
        else type(r).__name__
        for r in results
    )
    applied = outcomes["applied"]
    expected = min(len(plans), args.stock)
    answers_ok = applied == expected and applied + outcomes[Reason.SOLD_OUT.value] == len(plans)
    level = (await store.stock(merchant))[branch.id, sku.id]
    stock_ok = (level.received, level.reserved, level.available) == (
        args.stock,
        applied,
        args.stock - applied,
    )
    holds: collections.Counter[ShopperId] = collections.Counter()
    for i, ((_, pays_stored_value), result) in enumerate(zip(plans, results, strict=True)):
        if pays_stored_value and isinstance(result, Applied):
            holds[world["shoppers"][i % len(world["shoppers"])]] += STORED_VALUE_PART
    wrong_values = 0
    for shopper in world["shoppers"]:
        value = await store.stored_value(merchant, shopper)
        if (value.balance, value.held) != (TOP_UP, holds[shopper]):
            wrong_values += 1
    balances = await store.account_balances(merchant)
    return {
        "outcomes": dict(outcomes),
        "oversold": max(0, level.reserved + level.sold - level.received),
        "answers_ok": answers_ok,
        "stock": {
            "received": level.received,
            "reserved": level.reserved,
            "available": level.available,
            "ok": stock_ok,
        },
        "stored_value_ok": wrong_values == 0,
        "ledger_sums_to_zero": sum(balances.values()) == 0,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="lianbo-apply-"))
    redis = None
    if args.store == "redis":
        redis, port = start_redis(tmp, args.durability)
        store: Store = RedisStore(f"redis://127.0.0.1:{port}/0")
    else:
        store = SqliteStore(tmp / "lianbo.sqlite3", synchronous=SQLITE_SYNC[args.durability])
    await store.open()
    try:
        world = await set_up(store, args)
        plans = await make_plans(store, world, args.plans)
        me = psutil.Process()
        helper = psutil.Process(redis.pid if redis else os.getpid())
        cpu_before = me.cpu_times(), helper.cpu_times()
        results, seconds = await apply_all(store, world["merchant"], plans, args.concurrency)
        cpu_after = me.cpu_times(), helper.cpu_times()
        writer = store.writer_pid if isinstance(store, SqliteStore) else None
        checks = await check(store, world, plans, results, args)
    finally:
        await store.close()
        if redis is not None:
            stop_process(redis)
    client_cpu = sum(cpu_after[0][:2]) - sum(cpu_before[0][:2])
    result = {
        "store": args.store,
        "durability": args.durability,
        "plans": args.plans,
        "stock": args.stock,
        "concurrency": args.concurrency,
        "seconds": round(seconds, 3),
        "plans_per_s": round(args.plans / seconds),
        "caller_cpu_us_per_plan": round(client_cpu / args.plans * 1e6, 1),
        "checks": checks,
    }
    if redis is not None:
        redis_cpu = sum(cpu_after[1][:2]) - sum(cpu_before[1][:2])
        result["redis_cpu_us_per_plan"] = round(redis_cpu / args.plans * 1e6, 1)
        result["target_plans_per_s"] = TARGET_REDIS_PLANS_PER_S
        result["target_met"] = result["plans_per_s"] >= TARGET_REDIS_PLANS_PER_S
    if writer is not None:
        result["note"] = "the SQLite writer process's CPU is not in caller_cpu"
    result["all_checks_ok"] = (
        checks["answers_ok"]
        and checks["oversold"] == 0
        and checks["stock"]["ok"]
        and checks["stored_value_ok"]
        and checks["ledger_sums_to_zero"]
    )
    return result


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--store", choices=["sqlite", "redis"], required=True)
    p.add_argument("--durability", choices=DURABILITIES, default="default")
    p.add_argument("--plans", type=int, default=50_000)
    p.add_argument("--stock", type=int, default=40_000, help="units: the rest sell out")
    p.add_argument("--shoppers", type=int, default=1_000)
    p.add_argument("--concurrency", type=int, default=256, help="callers awaiting apply")
    p.add_argument("--json", action="store_true", help="print one JSON object last")
    args = p.parse_args()
    if args.store == "sqlite" and args.durability == "none":
        p.error("--durability none is for redis")
    if args.store == "redis" and args.durability == "relaxed":
        p.error("--durability relaxed is for sqlite")
    return args


def main() -> None:
    args = parse_args()
    result = asyncio.run(run(args))
    line = (
        f"{result['store']} ({result['durability']}): {result['plans']} plans, "
        f"{result['concurrency']} callers: {result['plans_per_s']:,} plans/s; "
        f"caller CPU {result['caller_cpu_us_per_plan']} us/plan"
        + (
            f", Redis CPU {result['redis_cpu_us_per_plan']} us/plan"
            if "redis_cpu_us_per_plan" in result
            else ""
        )
        + f"; checks {'ok' if result['all_checks_ok'] else 'FAILED'} {result['checks']}"
    )
    print(line, file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(result))
    sys.exit(0 if result["all_checks_ok"] else 1)


if __name__ == "__main__":
    main()
