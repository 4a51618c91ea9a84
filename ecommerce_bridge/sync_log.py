"""Writing the Ecommerce Sync Log: one helper for every room, so rows always read the same way."""

import json
import time
import traceback
from datetime import timedelta

import frappe
import pydantic
from frappe.utils import now_datetime, strip_html

from ecommerce_bridge.settings import get_settings

LOG = "Ecommerce Sync Log"
RETRY_BASE_SECONDS = 60
RETRY_MAX_SECONDS = 3600


class RunAgain(frappe.ValidationError):
	"""A concurrent transaction took what this one computed (a document name): run it again afresh."""


# The database rolled the whole transaction back (deadlock victim, lock wait timeout), or a concurrent
# transaction took a document name this one computed ("Ada Lovelace-Billing"): run it again. The work
# is idempotent, so running it again is always safe.
TRANSACTION_LOST = (frappe.QueryDeadlockError, frappe.QueryTimeoutError, frappe.DuplicateEntryError, RunAgain)


class BridgeError(frappe.ValidationError):
	"""A failure whose message is written for the accountant who must act on it."""


class NeedsPerson(BridgeError):
	"""A failure that retrying cannot cure until a person decides: no automatic retry, flagged."""


def as_json(value) -> str | None:
	if value is None:
		return None
	if isinstance(value, bytes):
		value = value.decode("utf-8", "replace")
	if isinstance(value, str):
		return value
	return json.dumps(value, indent=1, default=str, sort_keys=True)


def new_log(
	direction: str, entity: str, status: str = "Queued", **fields
) -> "frappe.model.document.Document":
	"""Insert a Sync Log row in the current transaction. ``idempotency_key`` duplicates raise."""
	for name in ("request_payload", "response"):
		if name in fields:
			fields[name] = as_json(fields[name])
	doc = frappe.get_doc(
		{"doctype": LOG, "direction": direction, "entity": entity, "status": status, **fields}
	)
	doc.insert(ignore_permissions=True)
	return doc


def update_log(name: str, **fields) -> None:
	for key in ("request_payload", "response"):
		if key in fields:
			fields[key] = as_json(fields[key])
	frappe.db.set_value(LOG, name, fields)


def plain_error(exc: BaseException) -> str:
	"""The first thing an accountant reads: the message, without HTML or Python noise."""
	message = strip_html(str(exc) or "").strip()
	if not message:
		message = type(exc).__name__
	return message[:2000]


def next_retry(attempts: int):
	"""When to try again after ``attempts`` failures, or None when a person must act."""
	if attempts >= (get_settings().max_attempts or 5):
		return None
	delay = min(RETRY_BASE_SECONDS * (2 ** max(attempts - 1, 0)), RETRY_MAX_SECONDS)
	return now_datetime() + timedelta(seconds=delay)


def record_failure(name: str, exc: BaseException, attempts: int, started: float | None = None) -> None:
	"""Mark a log Failed with the reason, the traceback and when (if ever) it is retried."""
	# A payload the contract refuses stays refused however often it is replayed.
	needs_person = isinstance(exc, NeedsPerson | pydantic.ValidationError)
	fields = {
		"status": "Failed",
		"error": plain_error(exc),
		"traceback": "".join(traceback.format_exception(exc))[-20000:],
		"next_retry_at": None if needs_person else next_retry(attempts),
		"needs_attention": int(needs_person),
	}
	if started is not None:
		fields["duration_ms"] = int((time.monotonic() - started) * 1000)
	update_log(name, **fields)
