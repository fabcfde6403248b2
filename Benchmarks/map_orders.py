"""The benchmark's 10-field mapping in Python with its json module, for comparison.
usage: python3 Benchmarks/map_orders.py ORDERS.jsonl  (prints payloads/s)"""
import json
import re
import sys
import time

NON_DIGITS = re.compile(r"[^0-9]")


def attribute(order, name):
    for item in order.get("note_attributes") or []:
        if item.get("name") == name:
            return item.get("value")
    return None


def text(value):
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def map_order(order):
    customer = order.get("customer") or {}
    fulfillments = order.get("fulfillments") or []
    items = order.get("line_items") or []
    last, first = customer.get("last_name"), customer.get("first_name")
    call = {
        "token": "***",
        "uuid": text(attribute(order, "happytalk_uuid")),
        "room_id": text(attribute(order, "happytalk_room_id")),
        "order_number": text(order.get("order_number")),
        "username": (last + first) if last and first else None,
        "phone": NON_DIGITS.sub("", customer.get("phone") or "") or None,
        "parcel_number": NON_DIGITS.sub("", fulfillments[-1].get("tracking_number") or "") or None if fulfillments else None,
        "email": text(order.get("email")),
        "product_number": text(items[0].get("product_id")) if items else None,
        "parameter1": text(order.get("financial_status")),
        "scenario_next": "Y",
    }
    return json.dumps({k: v for k, v in call.items() if v}, ensure_ascii=False, separators=(",", ":"))


lines = open(sys.argv[1], "rb").read().splitlines()
start = time.perf_counter()
size = 0
for line in lines:
    size += len(map_order(json.loads(line)))
elapsed = time.perf_counter() - start
print(f"{len(lines) / elapsed:.0f} payloads/s ({len(lines)} payloads, {elapsed:.3f} s, {size} output bytes)")
