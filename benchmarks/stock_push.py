"""Stock and catalogue push: cost to ERPNext users, latency to the storefront, calls, full resync.

Reports, in one run against the real site, the reference storefront and one RQ worker:
  (a) Stock Entry submit time with the bridge enabled / disabled (target <= 1.05);
  (b) latency from a stock commit to the storefront's update, median and p95 (target p95 < 2 s);
  (c) storefront calls for 100 movements of one SKU made as fast as this machine can (target <= 3
      when they fall within a second), and whether the final quantity is right;
  (d) a full resync of ITEMS published Items with stock: wall time and number of calls.

    cd frappe-bench && env/bin/python apps/ecommerce_bridge/benchmarks/stock_push.py --site bridge.test
"""

import statistics
import subprocess
import sys
import time
from pathlib import Path

from _harness import Processes, arguments, connect, describe_ms, machine

args = arguments(
	__doc__.splitlines()[0],
	submits=(40, "Stock Entries per side for (a)"),
	latency_samples=(30, "stock commits for (b)"),
	movements=(100, "movements of one SKU for (c)"),
	writers=(4, "processes making the movements for (c)"),
	items=(10_000, "published Items for (d)"),
)
frappe = connect(args.site)

from ecommerce_bridge.outbound.push import full_resync  # noqa: E402
from ecommerce_bridge.storefront import ReferenceStorefront  # noqa: E402
from ecommerce_bridge.tests import utils  # noqa: E402

SETTINGS = "Ecommerce Bridge Settings"


def set_enabled(value: int) -> None:
	frappe.db.set_single_value(SETTINGS, "enabled", value)
	frappe.db.commit()
	frappe.clear_cache(doctype=SETTINGS)


def receipt(sku: str, qty: float = 1) -> None:
	utils.stock_entry("Material Receipt", sku, qty, target=utils.shop())
	frappe.db.commit()


storefront = ReferenceStorefront(signing_secret=utils.SECRET, api_token=utils.TOKEN).start()
utils.setup_bridge(storefront.url)
utils.clear_queues()
processes = Processes()
try:
	# (a) what the bridge costs a user who submits a Stock Entry (no worker yet: only the capture counts).
	sku = utils.make_item(price=10)
	receipt(sku, 1000)
	timings = {1: [], 0: []}
	for block in range(args.submits // 5):
		for enabled in (1, 0) if block % 2 else (0, 1):
			set_enabled(enabled)
			for _ in range(5):
				started = time.perf_counter()
				receipt(sku)
				timings[enabled].append(time.perf_counter() - started)
	set_enabled(1)
	ratio = statistics.median(timings[1]) / statistics.median(timings[0])
	frappe.db.sql("update `tabEcommerce Outbox` set pending = 0")
	frappe.db.commit()
	utils.clear_queues()

	# (b) commit -> storefront, with one worker.
	processes.workers(args.site, 1)
	sku = utils.make_item(price=10)
	receipt(sku, 5)
	deadline = time.time() + 30
	while storefront.inventory.get(sku, {}).get("qty") != 5 and time.time() < deadline:
		time.sleep(0.01)
	latencies, expected = [], 5
	for _ in range(args.latency_samples):
		receipt(sku)
		committed = time.perf_counter()
		expected += 1
		while storefront.inventory.get(sku, {}).get("qty") != expected:
			if time.perf_counter() - committed > 30:
				raise RuntimeError(f"{sku} never reached {expected} on the storefront")
			time.sleep(0.005)
		latencies.append(time.perf_counter() - committed)
		time.sleep(0.3)

	# (c) many movements of one SKU at once.
	sku = utils.make_item(price=10)
	receipt(sku, 1)
	while storefront.inventory.get(sku, {}).get("qty") != 1:
		time.sleep(0.01)
	time.sleep(1.5)
	calls_before = storefront.call_count("/v1/inventory/batch")
	start_at = time.time() + 5  # the writers' imports done, they start together
	writers = [
		subprocess.Popen(
			[
				sys.executable,
				str(Path(__file__).with_name("_writer.py")),
				args.site,
				sku,
				str(args.movements // args.writers),
				str(start_at),
			],
			stdout=subprocess.PIPE,
			text=True,
		)
		for _ in range(args.writers)
	]
	span = max(float(proc.communicate()[0].strip().splitlines()[-1]) for proc in writers) - start_at
	final = 1 + args.movements // args.writers * args.writers
	deadline = time.perf_counter() + 60
	while storefront.inventory.get(sku, {}).get("qty") != final and time.perf_counter() < deadline:
		time.sleep(0.05)
	time.sleep(2)
	burst_calls = storefront.call_count("/v1/inventory/batch") - calls_before
	burst_qty = storefront.inventory.get(sku, {}).get("qty")
	processes.stop()

	# (d) full resync of a large catalogue (Items are made once and kept, unpublished, between runs).
	set_enabled(0)
	existing = frappe.db.count("Item", {"item_code": ("like", "BENCH-%")})
	for start in range(existing, args.items, 500):
		codes = [f"BENCH-{n:05d}" for n in range(start, min(start + 500, args.items))]
		for code in codes:
			utils.make_item(code, publish=0, price=10 + len(code) % 7)
		entry = frappe.get_doc(
			{
				"doctype": "Stock Entry",
				"stock_entry_type": "Material Receipt",
				"company": utils.company(),
				"items": [
					{"item_code": c, "qty": 7, "t_warehouse": utils.shop(), "basic_rate": 5} for c in codes
				],
			}
		)
		entry.insert(ignore_permissions=True)
		entry.submit()
		frappe.db.commit()
		print(f"  made {start + len(codes)} benchmark Items", flush=True)
	frappe.db.sql("update `tabItem` set ecommerce_publish = 1 where item_code like 'BENCH-%'")
	set_enabled(1)
	storefront.reset()
	started = time.perf_counter()
	pushed = full_resync(user="Administrator")
	resync_seconds = time.perf_counter() - started
	calls = storefront.call_count("/v1/products/batch") + storefront.call_count("/v1/inventory/batch")
	on_storefront = sum(1 for code in storefront.inventory if code.startswith("BENCH-"))
	frappe.db.sql("update `tabItem` set ecommerce_publish = 0 where item_code like 'BENCH-%'")
	frappe.db.commit()

	print(f"machine: {machine()}")
	print(
		f"(a) Stock Entry submit, enabled / disabled: {ratio:.3f} "
		f"(medians {statistics.median(timings[1]) * 1000:.0f} / {statistics.median(timings[0]) * 1000:.0f} ms)"
	)
	print(f"(b) stock commit -> storefront, one worker: {describe_ms(latencies)}")
	print(
		f"(c) {args.movements} movements of one SKU by {args.writers} writers in {span:.2f} s: "
		f"{burst_calls} inventory calls; storefront qty {burst_qty}, ERPNext {final}"
	)
	print(
		f"(d) full resync: {pushed} changes ({on_storefront} benchmark SKUs with stock) in {resync_seconds:.1f} s, "
		f"{calls} calls"
	)
finally:
	processes.stop()
	storefront.stop()
	frappe.destroy()
