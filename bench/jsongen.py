"""Generate nested e-commerce orders as NDJSON: the `json` template's data (3,000 orders,
seed 7, shipped as blase/datasets/orders.ndjson) and the nested-JSON benchmark's big file.

Each order has a customer object (with a nested address; `age` missing for some), a list of
item objects, payment and shipping objects, an optional coupon, and the label `returned`,
drawn from a logistic model of the payment method, the shipping time, the customer's tier,
the number of items, the share of fashion items and the coupon.

    python bench/jsongen.py --rows 3000 --seed 7 --out blase/datasets/orders.ndjson
    python bench/jsongen.py --size-gb 1 --out /tmp/orders-1gb.ndjson
"""

from __future__ import annotations

import argparse
import json
import math
import random
from collections.abc import Iterator
from datetime import datetime, timedelta

COUNTRIES = {"FR": ["Paris", "Lyon", "Lille"], "DE": ["Berlin", "Hamburg"], "ES": ["Madrid", "Sevilla"],
             "IT": ["Roma", "Milano"], "NL": ["Amsterdam"]}
CATEGORIES = {"books": (8, 30), "electronics": (40, 400), "fashion": (15, 120), "home": (10, 150)}


def order(i: int, rng: random.Random) -> dict:
    country = rng.choice(list(COUNTRIES))
    tier = rng.choices(["basic", "silver", "gold"], [6, 3, 1])[0]
    customer = {"id": f"c-{rng.randrange(5000):05d}", "tier": tier,
                "address": {"country": country, "city": rng.choice(COUNTRIES[country])}}
    if rng.random() > 0.15:
        customer["age"] = rng.randint(18, 80)
    items = []
    for _ in range(rng.choices([1, 2, 3, 4, 6], [5, 3, 2, 1, 1])[0]):
        category = rng.choice(list(CATEGORIES))
        low, high = CATEGORIES[category]
        items.append({"sku": f"{category[:2]}-{rng.randrange(400):03d}", "category": category,
                      "price": round(rng.uniform(low, high), 2), "qty": rng.choices([1, 2, 3], [8, 2, 1])[0]})
    method = rng.choices(["card", "paypal", "cod"], [6, 3, 1])[0]
    days = rng.randint(1, 9)
    out = {"order_id": f"o-{i:08d}",
           "placed_at": (datetime(2026, 1, 1) + timedelta(minutes=rng.randrange(300 * 24 * 60))).isoformat(),
           "customer": customer, "items": items,
           "payment": {"method": method, "installments": rng.choice([1, 1, 1, 3, 6]) if method == "card" else 1},
           "shipping": {"method": "express" if days <= 2 else rng.choice(["standard", "pickup"]), "days": days}}
    if rng.random() < 0.2:
        out["coupon"] = rng.choice(["WELCOME10", "SPRING", "VIP"])
    fashion = sum(it["category"] == "fashion" for it in items) / len(items)
    z = (-1.6 + 1.4 * (method == "cod") + 0.25 * (days - 4) - 0.9 * (tier == "gold") + 0.3 * (len(items) - 1)
         + 1.5 * fashion + 0.5 * ("coupon" in out))
    out["returned"] = rng.random() < 1 / (1 + math.exp(-z))
    return out


def orders(n: int | None, seed: int) -> Iterator[str]:
    rng = random.Random(seed)
    i = 0
    while n is None or i < n:
        yield json.dumps(order(i, rng), separators=(",", ":")) + "\n"
        i += 1


def write(path: str, *, rows: int | None = None, size_bytes: int | None = None, seed: int = 7) -> int:
    """Write orders to ``path`` until ``rows`` records or ``size_bytes`` bytes; returns rows."""
    written = size = 0
    with open(path, "w") as fh:
        for line in orders(rows, seed):
            fh.write(line)
            written += 1
            size += len(line)
            if size_bytes is not None and size >= size_bytes:
                break
    return written


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int)
    parser.add_argument("--size-gb", type=float)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    size = int(args.size_gb * (1 << 30)) if args.size_gb else None
    print(write(args.out, rows=args.rows if size is None else None, size_bytes=size, seed=args.seed), "orders")
