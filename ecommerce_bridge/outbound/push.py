"""Push: background jobs that drain the outbox to the storefront in batches.

A flush claims pending rows with ``SELECT ... FOR UPDATE SKIP LOCKED`` and a short lease, so any number of
workers on any number of machines share the work without sending a row twice at once. Values are read
*after* the claim commits, so what is sent is at least as new as the version sent with it; the storefront
keeps the highest version per key, so a late delivery never overwrites a newer value. A row changed while
its push was in flight stays pending and goes out in the next round.
"""

import time
from datetime import timedelta

import frappe
from frappe.utils import flt, now_datetime, nowdate

from ecommerce_bridge.outbound.capture import OUTBOX, PARKED, record_everything
from ecommerce_bridge.outbound.client import CircuitOpenError, StorefrontError
from ecommerce_bridge.settings import get_settings, make_client, pillar_enabled, published_warehouses
from ecommerce_bridge.sync_log import LOG, new_log

LEASE = timedelta(minutes=2)
MAX_ROUNDS = 200
# A burst of movements (a Black-Friday minute, a 100-line receipt posted line by line) is pushed once.
QUIET_SECONDS = 0.3
LONGEST_SETTLE_SECONDS = 1.0
PATHS = {
	"Item": "/v1/products/batch",
	"Stock": "/v1/inventory/batch",
	"Customer": "/v1/customers/batch",
	"Order": "/v1/orders/status",
}
BODY_KEYS = {"Item": "products", "Stock": "items", "Customer": "customers", "Order": "orders"}
# The field of a batch entry (and of the storefront's result for it) that names the outbox record.
KEY_FIELDS = {"Item": "sku", "Stock": "sku", "Customer": "erp_customer", "Order": "order_id"}


def flush_outbox(max_rounds: int = MAX_ROUNDS, progress=None, settle: bool = False) -> int:
	"""Push pending changes until none is left (or the storefront fails). Returns rows pushed.

	``settle`` (the job enqueued after a commit) first lets a burst of changes land; it starts a new
	transaction, so it is only for a job's own connection.
	"""
	settings = get_settings()
	if not settings.enabled or not settings.storefront_url:
		return 0
	client = make_client()
	if settle:
		wait_for_quiet()
	pushed = 0
	for _ in range(max_rounds):
		batch = claim_batch(settings.push_batch_size or 200)
		if not batch:
			break
		done, stop = push_claimed(client, batch)
		pushed += done
		if progress:
			progress(pushed)
		if stop:
			break
	return pushed


def wait_for_quiet(quiet: float = QUIET_SECONDS, longest: float = LONGEST_SETTLE_SECONDS) -> None:
	"""Let a burst of changes land before pushing, so that it costs one call instead of one per change.

	Waits until no change is newer than ``quiet`` seconds, and never longer than ``longest`` seconds.
	"""
	if other_work_waiting():
		# Workers are busy (an order burst): the changes gather while this job waits its turn anyway,
		# and a worker sleeping here would be one fewer turning checkouts into Sales Orders.
		return
	deadline = time.monotonic() + longest
	while time.monotonic() < deadline:
		frappe.db.rollback()  # a fresh snapshot: see what other transactions committed meanwhile
		newest = frappe.db.sql(f"select max(changed_at) from `{OUTBOX}` where pending = 1")[0][0]
		if newest is None:
			return
		age = (now_datetime() - newest).total_seconds()
		if age >= quiet:
			return
		time.sleep(max(0.0, min(quiet - age, deadline - time.monotonic())) + 0.01)


def other_work_waiting() -> bool:
	from frappe.utils.background_jobs import get_queue

	return any(get_queue(name).count for name in ("short", "default"))


def claim_batch(limit: int) -> list[dict]:
	"""Claim up to ``limit`` pending rows of one entity for this worker, and commit the claim."""
	now = now_datetime()
	rows = frappe.db.sql(
		f"""select name, entity, record_key, previous_key, version, attempts from `{OUTBOX}`
		where pending = 1 and (claimed_until is null or claimed_until < %(now)s)
		order by changed_at limit %(limit)s
		for update skip locked""",
		{"now": now, "limit": int(limit)},
		as_dict=True,
	)
	if not rows:
		frappe.db.commit()
		return []
	entity = rows[0].entity
	rows = [row for row in rows if row.entity == entity]
	token = frappe.generate_hash(length=16)
	frappe.db.sql(
		f"""update `{OUTBOX}` set claim_token = %(token)s, claimed_version = version,
			claimed_until = %(until)s, pushed_at = %(now)s
		where name in %(names)s""",
		{"token": token, "until": now + LEASE, "now": now, "names": tuple(row.name for row in rows)},
	)
	frappe.db.commit()
	for row in rows:
		row.token = token
	return rows


def push_claimed(client, rows: list[dict]) -> tuple[int, bool]:
	"""Send one claimed batch; returns (rows done, whether to stop flushing for now)."""
	entity = rows[0].entity
	started = time.monotonic()
	entries = build_entries(entity, rows)
	payload = {BODY_KEYS[entity]: entries}
	try:
		answer = client.post(PATHS[entity], payload) if entries else {"results": []}
	except StorefrontError as exc:
		retry_at = _release(rows, str(exc), retry_at=_retry_at(exc, rows))
		new_log(
			"Outbound",
			entity,
			status="Failed",
			request_payload=payload,
			response=exc.body,
			error=str(exc) + " " + frappe._("Nothing is lost: these changes stay queued and are sent again."),
			duration_ms=_ms(started),
			attempts=max(row.attempts for row in rows) + 1,
			next_retry_at=retry_at,
		)
		frappe.db.commit()
		return 0, True

	failed = {
		str(result.get(KEY_FIELDS[entity])): result.get("error") or "rejected"
		for result in answer.get("results") or []
		if result.get("status") == "error"
	}
	succeeded = [row for row in rows if row.record_key not in failed]
	_complete(succeeded)
	retry_at = None
	if failed:
		rejected = [row for row in rows if row.record_key in failed]
		retry_at = _release(rejected, "; ".join(failed.values()), park_after=get_settings().max_attempts or 5)
	if entries:
		parked = retry_at is not None and retry_at >= PARKED
		new_log(
			"Outbound",
			entity,
			status="Success" if not failed else ("Partial" if succeeded else "Failed"),
			request_payload=payload,
			response=answer,
			error="\n".join(f"{key}: {message}" for key, message in failed.items()) or None,
			duration_ms=_ms(started),
			attempts=max(row.attempts for row in rows) + 1 if failed else 1,
			next_retry_at=None if parked else retry_at,
			needs_attention=int(parked),
		)
	if succeeded:
		resolve_earlier_failures(entity)
	frappe.db.commit()
	return len(succeeded), False


def resolve_earlier_failures(entity: str) -> None:
	"""Failed pushes of ``entity`` are history once nothing that failed is still waiting to go out."""
	frappe.db.sql(
		f"""update `tab{LOG}` set status = 'Success', next_retry_at = null,
			error = concat(%(note)s, ifnull(error, ''))
		where direction = 'Outbound' and entity = %(entity)s and status in ('Failed', 'Partial')
			and needs_attention = 0
			and not exists (select 1 from `{OUTBOX}` where entity = %(entity)s and pending = 1 and attempts > 0)""",
		{
			"entity": entity,
			"note": frappe._("Sent later: every change in this batch has since reached the storefront.")
			+ "\n",
		},
	)


def _complete(rows) -> None:
	if not rows:
		return
	# A row changed during the push keeps pending = 1 (its version moved past the claimed one).
	frappe.db.sql(
		f"""update `{OUTBOX}` set pending = if(version = claimed_version, 0, 1),
			pushed_version = claimed_version, claimed_until = null, claim_token = null, attempts = 0,
			last_error = null, previous_key = if(version = claimed_version, null, previous_key)
		where claim_token = %(token)s and name in %(names)s""",
		{"token": rows[0].token, "names": tuple(row.name for row in rows)},
	)


def _release(rows, error: str, retry_at=None, park_after: int | None = None):
	"""Give claimed rows back with a backoff; returns when they are tried again.

	Rows the storefront rejected ``park_after`` times in a row are parked until a person retries them
	(or ERPNext changes them again): sending the same data again will not change the answer. Rows that
	did not get through (storefront down, timeouts) are never parked: they wait and go out when it answers.
	"""
	if not rows:
		return None
	attempts = max(row.attempts for row in rows) + 1
	retry_at = retry_at or now_datetime() + timedelta(seconds=min(5 * 2**attempts, 900))
	if park_after and attempts >= park_after:
		retry_at = PARKED
	frappe.db.sql(
		f"""update `{OUTBOX}` set claimed_until = %(retry_at)s, claim_token = null,
			attempts = attempts + 1, last_error = %(error)s
		where claim_token = %(token)s and name in %(names)s""",
		{
			"retry_at": retry_at,
			"error": error[:1000],
			"token": rows[0].token,
			"names": tuple(row.name for row in rows),
		},
	)
	return retry_at


def _retry_at(exc, rows):
	if isinstance(exc, CircuitOpenError):
		return now_datetime() + timedelta(seconds=30)
	return None


def _ms(started: float) -> int:
	return int((time.monotonic() - started) * 1000)


# ---- what is sent -------------------------------------------------------------------------------


def build_entries(entity: str, rows) -> list[dict]:
	"""The batch body for claimed rows; rows with nothing to send (an unpublished SKU's stock) are omitted."""
	from ecommerce_bridge.outbound.order_status import order_entries

	builder = {
		"Item": product_entries,
		"Stock": stock_entries,
		"Customer": customer_entries,
		"Order": order_entries,
	}[entity]
	return builder(rows)


def product_entries(rows) -> list[dict]:
	settings = get_settings()
	codes = [row.record_key for row in rows]
	items = {
		item.name: item
		for item in frappe.get_all(
			"Item",
			filters={"name": ("in", codes)},
			fields=[
				"name",
				"item_name",
				"item_group",
				"stock_uom",
				"disabled",
				"variant_of",
				"ecommerce_publish",
			],
		)
	}
	prices = selling_prices(codes, settings.price_list)
	entries = []
	for row in rows:
		item = items.get(row.record_key)
		entry = {"sku": row.record_key, "version": row.version, "renamed_from": row.previous_key or None}
		if not item or not item.ecommerce_publish:
			entry["deleted"] = True
		else:
			price = prices.get(item.name)
			entry.update(
				name=item.item_name,
				item_group=item.item_group,
				uom=item.stock_uom,
				disabled=bool(item.disabled),
				variant_of=item.variant_of or None,
				price=f"{price.price_list_rate:.2f}" if price else None,
				currency=price.currency if price else None,
				deleted=False,
			)
		entries.append(entry)
	return entries


def selling_prices(codes, price_list) -> dict:
	"""The standard selling price per Item: the price list's row for the stock UOM, valid today."""
	if not price_list or not codes:
		return {}
	today = nowdate()
	rows = frappe.db.sql(
		"""select ip.item_code, ip.price_list_rate, ip.currency, ip.uom, item.stock_uom
		from `tabItem Price` ip join `tabItem` item on item.name = ip.item_code
		where ip.price_list = %(price_list)s and ip.item_code in %(codes)s
			and ifnull(ip.customer, '') = '' and ifnull(ip.batch_no, '') = ''
			and (ip.valid_from is null or ip.valid_from <= %(today)s)
			and (ip.valid_upto is null or ip.valid_upto >= %(today)s)
		order by ip.valid_from desc, ip.modified desc""",
		{"price_list": price_list, "codes": tuple(codes), "today": today},
		as_dict=True,
	)
	chosen = {}
	for row in rows:
		if row.uom and row.uom != row.stock_uom:
			continue
		chosen.setdefault(row.item_code, row)
	return chosen


def published_quantities(codes) -> dict[str, float]:
	"""Per SKU: actual minus reserved over the published warehouses, never below zero.

	Reserved = open Sales Orders + production + subcontracting reservations + POS Invoices sold but not
	yet consolidated by a POS closing (their stock leaves the Bin only then).
	"""
	warehouses = tuple(published_warehouses())
	quantities = {code: 0.0 for code in codes}
	if not warehouses or not codes:
		return quantities
	values = {"codes": tuple(codes), "warehouses": warehouses}
	for row in frappe.db.sql(
		"""select item_code, sum(actual_qty - reserved_qty - reserved_qty_for_production
			- reserved_qty_for_sub_contract) as qty
		from `tabBin` where item_code in %(codes)s and warehouse in %(warehouses)s group by item_code""",
		values,
		as_dict=True,
	):
		quantities[row.item_code] += flt(row.qty)
	for row in frappe.db.sql(
		"""select pii.item_code, sum(pii.stock_qty) as qty
		from `tabPOS Invoice Item` pii join `tabPOS Invoice` pi on pi.name = pii.parent
		where pi.docstatus = 1 and ifnull(pi.consolidated_invoice, '') = ''
			and pii.item_code in %(codes)s and pii.warehouse in %(warehouses)s
		group by pii.item_code""",
		values,
		as_dict=True,
	):
		quantities[row.item_code] -= flt(row.qty)
	return {code: max(qty, 0.0) for code, qty in quantities.items()}


def stock_entries(rows) -> list[dict]:
	codes = [row.record_key for row in rows]
	published = set(
		frappe.get_all("Item", filters={"name": ("in", codes), "ecommerce_publish": 1}, pluck="name")
	)
	quantities = published_quantities([code for code in codes if code in published])
	return [
		{"sku": row.record_key, "qty": quantities[row.record_key], "version": row.version}
		for row in rows
		if row.record_key in published
	]


def customer_entries(rows) -> list[dict]:
	from ecommerce_bridge.inbound.customer import customer_snapshot

	entries = []
	for row in rows:
		snapshot = customer_snapshot(row.record_key)
		if snapshot:
			entries.append({**snapshot, "version": row.version})
	return entries


# ---- full resync --------------------------------------------------------------------------------


def full_resync(user: str | None = None) -> int:
	"""Queue every published Item and its stock, then push them, reporting progress to the Desk."""
	total = record_everything()
	frappe.db.commit()
	expected = total * (int(pillar_enabled("products")) + int(pillar_enabled("stock")))

	def progress(done):
		frappe.publish_realtime(
			"ecommerce_bridge_resync",
			{"done": min(done, expected), "total": expected, "message": f"{done} / {expected}"},
			user=user or frappe.session.user,
		)

	return flush_outbox(max_rounds=10_000, progress=progress)
