"""The storefront's door into ERPNext: whitelisted endpoints only.

Each endpoint does the same four things and nothing else: verify the signature, validate the payload
against the contract, commit the raw payload to the Sync Log (whose idempotency key is a unique index),
and enqueue the work to run after commit. Business logic lives in ``inbound/``.
"""

import json

import frappe
from frappe import _
from frappe.rate_limiter import rate_limit
from pydantic import BaseModel, ValidationError

from ecommerce_bridge.contract.models import CustomerUpsert, OrderCancel, OrderIn, ReturnIn, describe_errors
from ecommerce_bridge.contract.signing import SIGNATURE_HEADER, SignatureError, verify
from ecommerce_bridge.inbound.customer import AmbiguousCustomer, UnknownCountry, country_name
from ecommerce_bridge.inbound.order import enqueue_log, order_key, run_with_retries
from ecommerce_bridge.settings import get_settings, pillar_enabled, signing_secret
from ecommerce_bridge.sync_log import LOG, TRANSACTION_LOST, new_log, plain_error, record_failure

MAX_BODY_BYTES = 1024 * 1024
JUNK_PER_MINUTE = 60


class ServiceUnavailable(frappe.ValidationError):
	http_status_code = 503


class PayloadTooLarge(frappe.ValidationError):
	http_status_code = 413


def _inbound_rate_limit() -> int:
	return get_settings().inbound_rate_limit or 6000


def _count_junk() -> None:
	"""Requests that fail verification or validation have a small budget of their own per IP."""
	key = frappe.cache.make_key(f"ecommerce_bridge:junk:{frappe.local.request_ip}")
	if frappe.cache.incrby(key, 1) == 1:
		frappe.cache.expire(key, 60)


def _refuse_flood() -> None:
	key = frappe.cache.make_key(f"ecommerce_bridge:junk:{frappe.local.request_ip}")
	if int(frappe.cache.get(key) or 0) >= JUNK_PER_MINUTE:
		frappe.throw(
			_("Too many invalid requests from this address; wait a minute."), frappe.RateLimitExceededError
		)


def _verified_body() -> bytes:
	_refuse_flood()
	body = frappe.request.get_data(cache=True) or b""
	if len(body) > MAX_BODY_BYTES:
		_count_junk()
		frappe.throw(_("The request body is larger than 1 MiB."), PayloadTooLarge)
	try:
		verify(signing_secret() or "", body, frappe.get_request_header(SIGNATURE_HEADER))
	except SignatureError as exc:
		_count_junk()
		frappe.throw(_("Signature refused: {0}.").format(exc), frappe.AuthenticationError)
	return body


def _require(pillar: str) -> None:
	if not pillar_enabled(pillar):
		frappe.throw(
			_("The ERPNext bridge is not accepting {0} right now; send it again later.").format(pillar),
			ServiceUnavailable,
		)


def _reply(status_code: int, **message) -> dict:
	frappe.local.response.http_status_code = status_code
	return message


def _reject(entity: str, body: bytes, errors: list[dict], storefront_id: str | None, status_code: int = 422):
	"""Bad input: logged as Failed with its payload (nothing is lost), answered with each bad field."""
	_count_junk()
	summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
	log = new_log(
		"Inbound",
		entity,
		status="Failed",
		request_payload=body,
		storefront_id=storefront_id,
		error=_("The storefront sent an invalid payload, so nothing was created. {0}").format(summary),
	)
	return _reply(status_code, errors=errors, log=log.name)


def _parse(entity: str, body: bytes, model: type[BaseModel], id_field: str):
	try:
		raw = json.loads(body or b"null")
	except ValueError:
		return None, _reject(entity, body, [{"field": "body", "message": "is not valid JSON"}], None, 400)
	storefront_id = str(raw.get(id_field))[:100] if isinstance(raw, dict) and raw.get(id_field) else None
	try:
		parsed = model.model_validate(raw)
		check_countries(parsed)
	except ValidationError as exc:
		return None, _reject(entity, body, describe_errors(exc), storefront_id)
	except UnknownCountry as exc:
		return None, _reject(entity, body, [{"field": "country", "message": str(exc)}], storefront_id)
	return parsed, None


def check_countries(parsed: BaseModel) -> None:
	for address in _addresses(parsed):
		country_name(address.country)


def _addresses(parsed):
	for name in ("billing_address", "shipping_address"):
		if getattr(parsed, name, None):
			yield getattr(parsed, name)
	for line in getattr(parsed, "lines", None) or []:
		if getattr(line, "shipping_address", None):
			yield line.shipping_address
	yield from getattr(parsed, "addresses", None) or []


def _log_once(entity: str, key: str, body: bytes, storefront_id: str) -> dict:
	"""Insert the Sync Log row; a repeat of the same key answers with what became of the first one."""
	frappe.db.savepoint("ecommerce_ingest")
	try:
		log = new_log(
			"Inbound", entity, request_payload=body, storefront_id=storefront_id, idempotency_key=key
		)
	except (frappe.UniqueValidationError, frappe.DuplicateEntryError):
		frappe.db.rollback(save_point="ecommerce_ingest")
		frappe.clear_messages()
		# The failed insert left a shared lock on the key; a shared read of the latest committed row
		# keeps it that way (an exclusive read here would deadlock with the other duplicates).
		existing = frappe.db.sql(
			f"select name, status, reference_name from `tab{LOG}` where idempotency_key = %s lock in share mode",
			key,
			as_dict=True,
		)[0]
		return _reply(
			200, log=existing.name, status=existing.status, reference=existing.reference_name, duplicate=True
		)
	enqueue_log(log.name, entity)
	return _reply(202, log=log.name, status="Queued")


def _record_order_work(entity: str, model: type[BaseModel], key) -> dict:
	"""The one path of order work: verify, validate, commit the payload once under its key, enqueue."""
	body = _verified_body()
	_require("orders")
	request, rejection = _parse(entity, body, model, "order_id")
	if rejection:
		return rejection
	return _log_once(entity, key(request), body, request.order_id)


@frappe.whitelist(allow_guest=True, methods=["POST"])
@rate_limit(limit=_inbound_rate_limit, seconds=60)
def ingest_order() -> dict:
	"""A storefront checkout. 202 when recorded, 200 with the earlier result for a repeat."""
	return _record_order_work("Order", OrderIn, lambda order: order_key(order.order_id))


@frappe.whitelist(allow_guest=True, methods=["POST"])
@rate_limit(limit=_inbound_rate_limit, seconds=60)
def cancel_order() -> dict:
	"""The storefront cancelled an order: cancel its Sales Order, or reverse it if delivered or invoiced."""
	return _record_order_work("Order Cancel", OrderCancel, lambda request: f"cancel:{request.order_id}")


@frappe.whitelist(allow_guest=True, methods=["POST"])
@rate_limit(limit=_inbound_rate_limit, seconds=60)
def ingest_return() -> dict:
	"""Goods and/or money coming back for one order: 202 when recorded, 200 for a repeat of its
	return id (return ids are the storefront's, unique within an order)."""
	return _record_order_work(
		"Return", ReturnIn, lambda request: f"return:{request.order_id}:{request.return_id}"
	)


@frappe.whitelist(allow_guest=True, methods=["POST"])
@rate_limit(limit=_inbound_rate_limit, seconds=60)
def upsert_customer() -> dict:
	"""A sign-up or profile change: logged and committed, then applied at once (it is small)."""
	from ecommerce_bridge.inbound.customer import upsert_customer as apply

	body = _verified_body()
	_require("customers")
	payload, rejection = _parse("Customer", body, CustomerUpsert, "id")
	if rejection:
		return rejection
	log = new_log("Inbound", "Customer", status="Processing", request_payload=body, storefront_id=payload.id)
	frappe.db.commit()  # durable first: the payload is kept whatever happens next
	try:
		customer = run_with_retries(lambda: apply(payload), payload.email)
	except Exception as exc:
		# The payload stays in the log: ambiguity waits for a person, anything else is retried.
		frappe.db.rollback()
		frappe.clear_messages()
		record_failure(log.name, exc, attempts=1)
		frappe.db.set_value(LOG, log.name, "attempts", 1)
		status = (
			409 if isinstance(exc, AmbiguousCustomer) else 503 if isinstance(exc, TRANSACTION_LOST) else 500
		)
		return _reply(status, error=plain_error(exc), log=log.name)
	frappe.db.set_value(
		LOG, log.name, {"status": "Success", "reference_doctype": "Customer", "reference_name": customer}
	)
	return _reply(200, customer=customer, log=log.name)


@frappe.whitelist(allow_guest=True, methods=["GET"])
def order_status(order_id: str) -> dict:
	"""What became of a storefront order: its log status, Sales Order and any error."""
	_verified_body()
	log = frappe.db.get_value(
		LOG,
		{"idempotency_key": order_key(order_id)},
		["name", "status", "reference_name", "error"],
		as_dict=True,
	)
	if not log:
		return _reply(404, order_id=order_id, status="Unknown", error=_("No such order was received."))
	return {
		"order_id": order_id,
		"status": log.status,
		"sales_order": log.reference_name,
		"error": log.error,
		"log": log.name,
	}


@frappe.whitelist(allow_guest=True, methods=["GET"])
def health() -> dict:
	"""For monitoring tools: queue depth, oldest pending change, last success per pillar, recent failures.

	Signed like every storefront call (over the empty body), or called by a System Manager (for example
	with Frappe token auth of a monitoring user)."""
	from ecommerce_bridge.desk import health_report

	if frappe.session.user == "Guest":
		_verified_body()
	else:
		frappe.only_for("System Manager")
	return health_report()
