"""Capture: ERPNext events become outbox rows in the same transaction. No network, ever.

Each hook upserts one row per (entity, key) into ``tabEcommerce Outbox`` and bumps its version, so a
hundred movements of one SKU leave one pending row whose version says "newer than anything sent". After
commit a single de-duplicated flush job is enqueued; a rolled-back transaction leaves no row and no job.

Stock is caught where it really changes. ERPNext v15 writes Bin quantities with ``frappe.db.set_value``
or ``db_update``, which fire no Bin hooks, so we listen to the causes: every Stock Ledger Entry (all
voucher types, their cancellations and reposts), Sales Orders (reservations), POS Invoices (stock held
until the POS closing) and Stock Reservation Entries, plus Bin ``on_change`` for ``db_set`` paths. A
scheduled ``Bin.modified`` watermark catch-up finds anything these miss.
"""

from datetime import datetime, timedelta

import frappe
from frappe.utils import get_datetime, now_datetime

from ecommerce_bridge.settings import SETTINGS, get_settings, pillar_enabled, published_warehouses
from ecommerce_bridge.skus import normalize_sku

OUTBOX = "tabEcommerce Outbox"
FLUSH_JOB = "ecommerce_bridge:flush_outbox"
CATCH_UP_OVERLAP = timedelta(minutes=2)
# A push that read its values less than this long after a Bin changed may have missed an uncommitted
# change (a long ERPNext transaction); the catch-up sends such SKUs again.
READ_SAFETY_MARGIN_SECONDS = 60
# A hook records its row moments before ERPNext touches the Bin in the same transaction; a Bin changed
# later than this after the last recorded change was changed by something the hooks did not see.
HOOK_TO_BIN_SECONDS = 2
# Rows the storefront kept rejecting wait here until a person retries them or ERPNext changes them again.
PARKED = datetime(9999, 12, 31)


def record(entity: str, keys, previous_key: str | None = None) -> None:
	"""Mark ``keys`` of ``entity`` as changed, in the caller's transaction, and flush after commit."""
	keys = sorted({key for key in keys if key})
	if not keys:
		return
	now = now_datetime()
	rows = []
	values = {
		"entity": entity,
		"now": now,
		"user": frappe.session.user,
		"previous": previous_key,
		"parked": PARKED,
	}
	for i, key in enumerate(keys):
		values[f"n{i}"], values[f"k{i}"] = f"{entity}:{key}", key
		rows.append(
			f"(%(n{i})s, %(entity)s, %(k{i})s, %(previous)s, 1, 1, %(now)s, 0, %(now)s, %(now)s,"
			" %(user)s, %(user)s, 0, 0)"
		)
	# Sorted keys: concurrent transactions lock the same rows in the same order and cannot deadlock.
	frappe.db.sql(
		f"""insert into `{OUTBOX}` (name, entity, record_key, previous_key, version, pending, changed_at,
			attempts, creation, modified, owner, modified_by, docstatus, idx)
		values {", ".join(rows)}
		on duplicate key update version = version + 1, pending = 1, changed_at = values(changed_at),
			modified = values(modified), attempts = 0, last_error = null,
			claimed_until = if(claimed_until >= %(parked)s, null, claimed_until),
			previous_key = coalesce(values(previous_key), previous_key)""",
		values,
	)
	enqueue_flush_after_commit()


def enqueue_flush_after_commit() -> None:
	# CallbackManager has no "contains"; one flush per transaction is enough.
	if _enqueue_flush not in frappe.db.after_commit._functions:
		frappe.db.after_commit.add(_enqueue_flush)


def _enqueue_flush() -> None:
	"""One queued flush at a time. While one runs, one more is queued to follow it: a change committed
	just as the running flush finds nothing left would otherwise wait for the scheduled catch-up."""
	from frappe.utils.background_jobs import get_job_status
	from rq.job import JobStatus

	job_id = FLUSH_JOB
	if get_job_status(FLUSH_JOB) == JobStatus.STARTED:
		job_id = f"{FLUSH_JOB}:next"
	frappe.enqueue(
		"ecommerce_bridge.outbound.push.flush_outbox",
		queue="short",
		job_id=job_id,
		deduplicate=True,
		settle=True,
	)


def _is_published(item_code: str) -> bool:
	return bool(item_code and frappe.get_cached_value("Item", item_code, "ecommerce_publish"))


def record_stock(pairs) -> None:
	"""Record stock changes for (item_code, warehouse) pairs that the storefront can see."""
	if not pillar_enabled("stock"):
		return
	warehouses = published_warehouses()
	record("Stock", [item for item, warehouse in pairs if warehouse in warehouses and _is_published(item)])


# ---- doc_events ---------------------------------------------------------------------------------


def set_sku_key(doc, method=None):
	doc.ecommerce_sku_key = normalize_sku(doc.name or doc.item_code)


def item_changed(doc, method=None):
	before = doc.get_doc_before_save() if method != "on_trash" else None
	was_published = bool(before and before.get("ecommerce_publish"))
	if not (doc.get("ecommerce_publish") or was_published):
		return
	if pillar_enabled("products"):
		record("Item", [doc.name])
	if pillar_enabled("stock") and doc.get("ecommerce_publish") and not was_published:
		record("Stock", [doc.name])


def item_renamed(doc, method, old_name, new_name, merge=False):
	if not doc.get("ecommerce_publish"):
		return
	frappe.db.set_value("Item", new_name, "ecommerce_sku_key", normalize_sku(new_name), update_modified=False)
	frappe.db.sql(f"delete from `{OUTBOX}` where name in (%s, %s)", (f"Item:{old_name}", f"Stock:{old_name}"))
	if pillar_enabled("products"):
		record("Item", [new_name], previous_key=old_name)
	if pillar_enabled("stock"):
		record("Stock", [new_name])


def item_price_changed(doc, method=None):
	if (
		pillar_enabled("products")
		and doc.price_list == get_settings().price_list
		and _is_published(doc.item_code)
	):
		record("Item", [doc.item_code])


def ledger_entry_posted(doc, method=None):
	record_stock([(doc.item_code, doc.warehouse)])


def bin_changed(doc, method=None):
	record_stock([(doc.item_code, doc.warehouse)])


def voucher_lines_changed(doc, method=None):
	"""Sales Orders reserve stock and POS Invoices hold it; both change what the storefront may sell."""
	record_stock([(row.item_code, row.warehouse) for row in doc.get("items") or []])


def stock_reservation_changed(doc, method=None):
	record_stock([(doc.item_code, doc.warehouse)])


# ---- the safety net -----------------------------------------------------------------------------


def stock_catch_up() -> int:
	"""Record every published SKU whose Bin changed since the watermark and was not pushed since."""
	if not pillar_enabled("stock"):
		return 0
	warehouses = tuple(published_warehouses())
	if not warehouses:
		return 0
	settings = get_settings()
	started = now_datetime()
	since = get_datetime(settings.stock_watermark or "2000-01-01") - CATCH_UP_OVERLAP
	missed = frappe.db.sql_list(
		f"""select distinct bin.item_code
		from `tabBin` bin
		join `tabItem` item on item.name = bin.item_code and item.ecommerce_publish = 1
		left join `{OUTBOX}` ob on ob.name = concat('Stock:', bin.item_code)
		where bin.modified >= %(since)s and bin.warehouse in %(warehouses)s
			and (ob.name is null or (ob.pending = 0
				and ob.changed_at < bin.modified - interval {HOOK_TO_BIN_SECONDS} second
				and ob.pushed_at < bin.modified + interval {READ_SAFETY_MARGIN_SECONDS} second))""",
		{"since": since, "warehouses": warehouses},
	)
	record("Stock", missed)
	frappe.db.set_single_value(SETTINGS, "stock_watermark", started, update_modified=False)
	return len(missed)


def record_everything() -> int:
	"""Mark every published Item and its stock as changed: the start of a full resync.

	A person asked for it now, so rows waiting out a retry backoff go too (rows leased by a running push
	keep their lease).
	"""
	frappe.db.sql(f"update `{OUTBOX}` set claimed_until = null where claim_token is null")
	codes = frappe.get_all("Item", filters={"ecommerce_publish": 1}, pluck="name", order_by="name")
	for start in range(0, len(codes), 1000):
		chunk = codes[start : start + 1000]
		if pillar_enabled("products"):
			record("Item", chunk)
		if pillar_enabled("stock"):
			record("Stock", chunk)
	return len(codes)
