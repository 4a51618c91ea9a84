"""Orders under a Black-Friday burst: acknowledgement latency, throughput to Sales Order, exactly once.

Starts gunicorn (2 web workers) and RQ workers, then with the same 10 concurrent clients measures:
  1. the ceiling of any write through Frappe: p95 of ``POST /api/resource/ToDo``;
  2. ERPNext's own Sales Order insert+submit rate (``POST /api/resource/Sales Order`` with docstatus 1);
  3. a burst of ORDERS distinct signed checkouts plus DUPLICATES repeats to ``ingest_order``: the
     acknowledgement latency, orders per second until the last Sales Order exists, Sales Orders created
     (must equal ORDERS) and orders lost (must be 0); TODOS_IN_BURST ToDo inserts are mixed into the
     burst, for the floor of a write under the very same load.

    cd frappe-bench && env/bin/python apps/ecommerce_bridge/benchmarks/orders_burst.py --site bridge.test
"""

import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from _harness import Processes, arguments, connect, describe_ms, machine, percentile, site_header

args = arguments(
	__doc__.splitlines()[0],
	orders=(1000, "distinct orders in the burst"),
	duplicates=(200, "repeated deliveries mixed into the burst"),
	clients=(10, "concurrent clients"),
	web_workers=(2, "gunicorn workers"),
	rq_workers=(2, "RQ workers"),
	customers=(300, "distinct shoppers the orders come from"),
	todos_in_burst=(200, "ToDo inserts mixed into the burst, for the floor under the same load"),
)
frappe = connect(args.site)

from ecommerce_bridge.contract.signing import SIGNATURE_HEADER, sign  # noqa: E402
from ecommerce_bridge.storefront import ReferenceStorefront  # noqa: E402
from ecommerce_bridge.tests import utils  # noqa: E402

storefront = ReferenceStorefront(signing_secret=utils.SECRET, api_token=utils.TOKEN).start()
utils.setup_bridge(storefront.url)
sku = utils.make_item(price=20)
utils.stock_entry("Material Receipt", sku, 1_000_000, target=utils.shop())
customer = frappe.get_doc(
	{
		"doctype": "Customer",
		"customer_name": f"Benchmark ceiling {frappe.generate_hash(length=6)}",
		"customer_group": frappe.get_all("Customer Group", filters={"is_group": 0}, pluck="name")[0],
		"territory": frappe.get_all("Territory", filters={"is_group": 0}, pluck="name")[0],
	}
).insert(ignore_permissions=True)
from frappe.core.doctype.user.user import generate_keys  # noqa: E402

secret = generate_keys("Administrator")["api_secret"]
api_key = frappe.db.get_value("User", "Administrator", "api_key")
frappe.db.commit()
utils.clear_queues()

processes = Processes()
local = threading.local()


def session() -> requests.Session:
	if not hasattr(local, "session"):
		local.session = requests.Session()
		local.session.headers.update(site_header(args.site))
	return local.session


def timed(call):
	started = time.perf_counter()
	response = call()
	return time.perf_counter() - started, response


def run(calls):
	with ThreadPoolExecutor(args.clients) as pool:
		return list(pool.map(timed, calls))


try:
	url = processes.web(args.site, workers=args.web_workers)
	processes.workers(args.site, args.rq_workers)
	auth = {"Authorization": f"token {api_key}:{secret}", "Content-Type": "application/json"}

	# 1. The floor of any write through Frappe.
	todo = json.dumps({"description": "benchmark"})
	results = run(
		[lambda: session().post(f"{url}/api/resource/ToDo", data=todo, headers=auth, timeout=60)] * 300
	)
	assert all(r.status_code == 200 for _, r in results), {r.status_code for _, r in results}
	todo_latency = [t for t, _ in results]

	# 2. ERPNext's own Sales Order insert+submit rate.
	order = json.dumps(
		{
			"customer": customer.name,
			"company": utils.company(),
			"delivery_date": frappe.utils.nowdate(),
			"set_warehouse": utils.shop(),
			"docstatus": 1,
			"items": [{"item_code": sku, "qty": 1, "rate": 20}],
		}
	)
	started = time.perf_counter()
	results = run(
		[lambda: session().post(f"{url}/api/resource/Sales Order", data=order, headers=auth, timeout=120)]
		* 200
	)
	ceiling_rate = len(results) / (time.perf_counter() - started)
	assert all(r.status_code == 200 for _, r in results), {r.text[:300] for _, r in results if not r.ok}

	# 3. The burst: distinct orders and duplicates, in random order, 10 clients.
	run_tag = frappe.generate_hash(length=6)
	payloads = [
		utils.order_payload(
			[(sku, random.randint(1, 3), 20)],
			order_id=f"BF{run_tag}{i:05d}",
			email=f"shopper{random.randrange(args.customers)}-{run_tag}@example.com",
		)
		for i in range(args.orders)
	]
	deliveries = payloads + random.sample(payloads, args.duplicates)
	random.shuffle(deliveries)
	bodies = [json.dumps(p).encode() for p in deliveries]

	def deliver(body):
		return lambda: session().post(
			f"{url}/api/method/ecommerce_bridge.api.ingest_order",
			data=body,
			headers={SIGNATURE_HEADER: sign(utils.SECRET, body), "Content-Type": "application/json"},
			timeout=60,
		)

	# ToDo inserts ride along in the burst: the floor of a write under the very same load (the web
	# workers busy with the burst, the RQ workers and the database turning it into Sales Orders).
	todo_call = lambda: session().post(f"{url}/api/resource/ToDo", data=todo, headers=auth, timeout=60)  # noqa: E731
	calls = [("order", deliver(body)) for body in bodies] + [("todo", todo_call)] * args.todos_in_burst
	random.shuffle(calls)
	started = time.perf_counter()
	results = run([call for _, call in calls])
	acked = time.perf_counter() - started
	codes = {}
	for (kind, _), (_, response) in zip(calls, results, strict=True):
		if kind == "order":
			codes[response.status_code] = codes.get(response.status_code, 0) + 1
	ack_latency = [t for (kind, _), (t, _) in zip(calls, results, strict=True) if kind == "order"]
	todo_in_burst = [t for (kind, _), (t, _) in zip(calls, results, strict=True) if kind == "todo"]

	order_ids = [p["order_id"] for p in payloads]
	made, last_progress, done_at = 0, time.perf_counter(), None
	while True:
		frappe.db.rollback()
		count = frappe.db.count("Sales Order", {"ecommerce_order_id": ("like", f"BF{run_tag}%")})
		if count != made:
			made, last_progress = count, time.perf_counter()
		if made >= args.orders:
			done_at = time.perf_counter()
			break
		if time.perf_counter() - last_progress > 180:
			break
		time.sleep(0.25)
	elapsed = (done_at or last_progress) - started
	logged = frappe.db.count("Ecommerce Sync Log", {"idempotency_key": ("like", f"order:BF{run_tag}%")})
	failed = frappe.get_all(
		"Ecommerce Sync Log",
		filters={"idempotency_key": ("like", f"order:BF{run_tag}%"), "status": ("!=", "Success")},
		fields=["status", "error"],
		limit=5,
	)
	with_order = frappe.db.sql(
		"""select count(distinct ecommerce_order_id) from `tabSales Order` where ecommerce_order_id like %s""",
		f"BF{run_tag}%",
	)[0][0]
	lost = args.orders - with_order
	throughput = made / elapsed

	print(f"machine: {machine()}; {args.web_workers} gunicorn workers, {args.rq_workers} RQ workers")
	print(f"clients: {args.clients}")
	print(f"ceiling, REST insert of a ToDo: {describe_ms(todo_latency)}")
	print(f"ceiling, Sales Order insert+submit over REST: {ceiling_rate:.1f} orders/s")
	print(
		f"burst: {args.orders} orders + {args.duplicates} duplicates, answers {codes}, all acknowledged in {acked:.1f} s"
	)
	print(f"acknowledgement latency: {describe_ms(ack_latency)}")
	print(f"ToDo REST insert inside the burst (same load): {describe_ms(todo_in_burst)}")
	print(
		f"throughput to Sales Order: {throughput:.1f} orders/s ({throughput / ceiling_rate:.0%} of the ceiling)"
	)
	print(f"sales orders created: {made} (expected {args.orders}); sync logs: {logged}; lost: {lost}")
	print(
		f"targets: p95 ack {percentile(ack_latency, 0.95) * 1000:.0f} ms <= ToDo p95 "
		f"{percentile(todo_latency, 0.95) * 1000:.0f} ms; throughput >= 70% of ceiling"
	)
	if failed:
		print("not successful:", failed)
finally:
	processes.stop()
	storefront.stop()
	frappe.destroy()
