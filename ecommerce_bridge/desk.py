"""The accountants' Desk: retrying failed work, the health figures, and the workspace's number cards.

A retry never takes a method or a payload from the browser: it names Sync Log rows, and each row is
replayed from what the row itself stored. Replaying is idempotent because the work is (the Sales Order's
storefront order id and the Payment Entry's key are unique indexes): a retry of work that succeeded
creates nothing new.
"""

from datetime import timedelta

import frappe
from frappe import _
from frappe.utils import now_datetime

from ecommerce_bridge.inbound.order import JOBS, enqueue_log
from ecommerce_bridge.outbound.capture import OUTBOX, record
from ecommerce_bridge.outbound.push import BODY_KEYS, KEY_FIELDS
from ecommerce_bridge.settings import get_settings
from ecommerce_bridge.sync_log import LOG

MAX_RETRY_AT_ONCE = 500
# Which Sync Log entities make up each pillar, for "last success" figures.
PILLARS = {
	"products": ("Item", "Price"),
	"stock": ("Stock",),
	"orders": ("Order", "Order Cancel", "Return", "Invoice"),
	"customers": ("Customer",),
}


def can_retry(user: str | None = None) -> bool:
	"""System Managers may always retry; the Settings' Retry Role may be given the right too."""
	roles = frappe.get_roles(user)
	if "System Manager" in roles:
		return True
	retry_role = get_settings().retry_role
	return bool(retry_role and retry_role in roles)


@frappe.whitelist(methods=["POST"])
def retry(names: str | list[str]) -> dict:
	"""Replay the named Sync Log rows from what they stored. Answers what became of each."""
	if not can_retry():
		frappe.throw(
			_(
				"You may read the Sync Log but not retry its work. Ask a System Manager to retry it, or to "
				"name your role as the Retry Role in Ecommerce Bridge Settings."
			),
			frappe.PermissionError,
		)
	if isinstance(names, str):
		names = frappe.parse_json(names) if names.lstrip().startswith("[") else [names]
	if len(names) > MAX_RETRY_AT_ONCE:
		frappe.throw(_("Retry at most {0} rows at once.").format(MAX_RETRY_AT_ONCE))
	outcomes = {name: replay(name) for name in names}
	queued = sum(1 for outcome in outcomes.values() if outcome == "queued")
	return {
		"outcomes": outcomes,
		"queued": queued,
		"message": _("{0} of {1} queued again; the others needed nothing or cannot be retried.").format(
			queued, len(names)
		),
	}


def replay(name: str) -> str:
	"""Queue one row's work again; returns queued, already done, in progress, not retryable or missing."""
	log = frappe.db.get_value(
		LOG,
		name,
		["name", "direction", "entity", "status", "needs_attention", "request_payload"],
		as_dict=True,
		for_update=True,
	)
	if not log:
		return "missing"
	if log.status in ("Queued", "Processing"):
		return "in progress"
	if log.status in ("Success", "Skipped") and not log.needs_attention:
		return "already done"
	user_note = _("Retried by {0} at {1}.").format(
		frappe.session.user, now_datetime().strftime("%Y-%m-%d %H:%M")
	)
	if log.direction != "Outbound" and log.entity in JOBS:
		frappe.db.set_value(
			LOG,
			name,
			{"status": "Queued", "next_retry_at": None, "needs_attention": 0, "alerted_at": None},
		)
		_comment(name, user_note)
		enqueue_log(name, log.entity)
		return "queued"
	if log.direction == "Outbound" and log.entity in BODY_KEYS:
		keys = _outbound_keys(log)
		if not keys:
			return "not retryable"
		# The current values go out, not the stored ones: ERPNext may have changed since.
		record(log.entity, keys)
		frappe.db.set_value(LOG, name, {"status": "Queued", "needs_attention": 0, "next_retry_at": None})
		_comment(name, user_note + " " + _("{0} records queued to be sent again.").format(len(keys)))
		return "queued"
	return "not retryable"


def _outbound_keys(log) -> list[str]:
	payload = frappe.parse_json(log.request_payload or "{}") or {}
	key_field = KEY_FIELDS[log.entity]
	return [
		str(entry[key_field])
		for entry in payload.get(BODY_KEYS[log.entity]) or []
		if isinstance(entry, dict) and entry.get(key_field)
	]


def _comment(name: str, text: str) -> None:
	frappe.get_doc(
		{
			"doctype": "Comment",
			"comment_type": "Info",
			"reference_doctype": LOG,
			"reference_name": name,
			"content": text,
		}
	).insert(ignore_permissions=True)


# ---- health --------------------------------------------------------------------------------------


def health_report() -> dict:
	"""What a monitoring tool needs: queue depth, oldest pending change, last success, recent failures."""
	now = now_datetime()
	outbox_depth, oldest = frappe.db.sql(
		f"select count(*), min(changed_at) from `{OUTBOX}` where pending = 1"
	)[0]
	inbound_depth = frappe.db.count(LOG, {"direction": "Inbound", "status": ("in", ["Queued", "Processing"])})
	failures = frappe.db.count(LOG, {"status": "Failed", "modified": (">=", now - timedelta(hours=1))})
	last_success = {}
	for pillar, entities in PILLARS.items():
		moment = _latest({"status": "Success", "entity": entities}, "modified")
		last_success[pillar] = moment.isoformat() if moment else None
	oldest_age = (now - oldest).total_seconds() if oldest else 0
	return {
		"status": "ok" if not failures and oldest_age < 300 else "degraded",
		"checked_at": now.isoformat(),
		"queue_depth": {"outbound_changes": int(outbox_depth), "inbound_work": inbound_depth},
		"oldest_pending_change": oldest.isoformat() if oldest else None,
		"oldest_pending_seconds": round(oldest_age, 1),
		"last_success": last_success,
		"failures_last_hour": failures,
	}


def _latest(filters: dict, column: str):
	"""The newest ``column`` of the Sync Log rows matching ``filters`` (tuples mean "in")."""
	conditions, values = [], {}
	for field, value in filters.items():
		if isinstance(value, tuple):
			conditions.append(f"`{field}` in %({field})s")
		else:
			conditions.append(f"`{field}` = %({field})s")
		values[field] = value
	return frappe.db.sql(f"select max(`{column}`) from `tab{LOG}` where {' and '.join(conditions)}", values)[
		0
	][0]


# ---- workspace number cards (type Custom) ---------------------------------------------------------


@frappe.whitelist()
def last_stock_push_age(filters=None):
	"""Minutes since the storefront last accepted a stock push, linking to those pushes."""
	frappe.has_permission(LOG, "read", throw=True)
	moment = _latest({"entity": ("Stock",), "direction": "Outbound", "status": "Success"}, "creation")
	if not moment:
		return _("never")
	return {
		"value": int((now_datetime() - moment).total_seconds() // 60),
		"fieldtype": "Int",
		"route": ["List", LOG],
		"route_options": {"entity": "Stock", "direction": "Outbound", "status": "Success"},
	}


@frappe.whitelist()
def retry_allowed() -> bool:
	"""Whether the Desk should offer this user the Retry buttons."""
	return can_retry()
