"""One Customer per storefront shopper: matching, Contact and address book. Shared by orders and sign-ups.

The matching rule (also in the README):
1. A Customer carrying the storefront customer id is that shopper. If the storefront now sends another
   e-mail, the Customer's e-mail follows it, unless another Customer already owns that e-mail: then the
   request is held for a person (``AmbiguousCustomer``), never merged by guess.
2. Otherwise the normalised e-mail (trimmed, lower-cased) decides. A guest's Customer (no storefront id)
   is linked to the account that registers with its e-mail, so guest orders and the account are one
   Customer. An e-mail already linked to a *different* storefront id is ambiguous and held for a person.
3. Otherwise a new Customer is created with the Settings' customer group and territory.
Both keys are unique indexes in the database, so two concurrent sign-ups with one e-mail make one Customer.
"""

import hashlib

import frappe
from frappe import _
from frappe.utils import cint

from ecommerce_bridge.contract.models import Address, CustomerIn, CustomerUpsert
from ecommerce_bridge.db import escape_like
from ecommerce_bridge.settings import get_settings, pillar_enabled
from ecommerce_bridge.sync_log import BridgeError, NeedsPerson, RunAgain

SHOPPER_LOCK_SECONDS = 30


class AmbiguousCustomer(NeedsPerson):
	"""Two storefront identities point at one ERPNext Customer (or the reverse); a person must decide."""


class UnknownCountry(BridgeError):
	pass


def country_name(code: str) -> str:
	name = frappe.db.get_value("Country", {"code": code.lower()}, "name", cache=True)
	if not name:
		raise UnknownCountry(_("Country code {0} is not a country known to ERPNext.").format(code))
	return name


def _find(field: str, value: str | None) -> dict | None:
	if not value:
		return None
	# A locking read: it sees rows committed by a concurrent request after our snapshot began.
	return frappe.db.get_value(
		"Customer",
		{field: value},
		["name", "ecommerce_customer_id", "ecommerce_email"],
		as_dict=True,
		for_update=True,
	)


def hold_shopper(email: str) -> None:
	"""Serialise work on one shopper across requests, workers and machines until this transaction ends.

	A MariaDB named lock (held by the connection, released after commit or rollback): the second of two
	concurrent sign-ups with one e-mail waits, then finds the Customer the first one made.
	"""
	key = "ecommerce_bridge:shopper:" + hashlib.sha1(email.encode()).hexdigest()[:32]
	held = frappe.local.flags.setdefault("ecommerce_shopper_locks", set())
	if key in held:
		return
	if not frappe.db.sql("select get_lock(%s, %s)", (key, SHOPPER_LOCK_SECONDS))[0][0]:
		raise frappe.QueryTimeoutError(f"another request holds shopper {email} for too long")
	held.add(key)

	def release():
		if key in held:
			held.discard(key)
			frappe.db.sql("select release_lock(%s)", key)

	frappe.db.after_commit.add(release)
	frappe.db.after_rollback.add(release)


def ensure_customer(shopper: CustomerIn) -> str:
	"""The Customer for ``shopper``, created or linked per the matching rule. Raises AmbiguousCustomer."""
	hold_shopper(shopper.email)
	by_id = _find("ecommerce_customer_id", shopper.id)
	if by_id:
		if by_id.ecommerce_email != shopper.email:
			owner = _find("ecommerce_email", shopper.email)
			if owner and owner.name != by_id.name:
				raise AmbiguousCustomer(
					_(
						"Storefront customer {0} now uses e-mail {1}, which belongs to Customer {2}. "
						"Merge the two Customers in ERPNext or correct the e-mail on the storefront, then retry."
					).format(shopper.id, shopper.email, owner.name)
				)
			frappe.db.set_value("Customer", by_id.name, "ecommerce_email", shopper.email)
		return by_id.name

	by_email = _find("ecommerce_email", shopper.email)
	if by_email:
		if shopper.id and by_email.ecommerce_customer_id and by_email.ecommerce_customer_id != shopper.id:
			raise AmbiguousCustomer(
				_(
					"E-mail {0} belongs to storefront customer {1} (Customer {2}), but storefront customer {3} "
					"uses it too. Decide which account owns the e-mail, then retry."
				).format(shopper.email, by_email.ecommerce_customer_id, by_email.name, shopper.id)
			)
		if shopper.id and not by_email.ecommerce_customer_id:
			frappe.db.set_value("Customer", by_email.name, "ecommerce_customer_id", shopper.id)
		return by_email.name

	return _create_customer(shopper)


def _free_customer_name(customer_name: str) -> str | None:
	"""ERPNext's name for a new Customer ("Ada Lovelace", else "Ada Lovelace - 3"), chosen under a lock.

	ERPNext counts the taken names with a plain read, so two shoppers of one name created at once get the
	same number. A locking read sees what others committed and makes the next one of that name wait for
	this transaction. None when Customers are named by series (ERPNext then names it).
	"""
	if frappe.defaults.get_global_default("cust_master_name") != "Customer Name":
		return None
	prefix = f"{customer_name} - "
	taken = frappe.db.sql_list(
		"select name from `tabCustomer` where name = %s or name like %s for update",
		(customer_name, escape_like(prefix) + "%"),
	)
	if not taken:
		return customer_name
	# The database compares names without case; so must we.
	numbers = [cint(name[len(prefix) :]) for name in taken if name.casefold().startswith(prefix.casefold())]
	return f"{prefix}{max(numbers, default=0) + 1}"


def _create_customer(shopper: CustomerIn) -> str:
	settings = get_settings()
	customer = frappe.get_doc(
		{
			"doctype": "Customer",
			"customer_name": shopper.company_name or shopper.full_name,
			"customer_type": "Company" if shopper.company_name else "Individual",
			"customer_group": settings.customer_group,
			"territory": settings.territory,
			"ecommerce_email": shopper.email,
			"ecommerce_customer_id": shopper.id,
			# ERPNext makes the primary Contact from these on insert.
			"email_id": shopper.email,
			"mobile_no": shopper.phone,
		}
	)
	frappe.db.savepoint("ecommerce_customer")
	try:
		customer.insert(ignore_permissions=True, set_name=_free_customer_name(customer.customer_name))
	except (frappe.UniqueValidationError, frappe.DuplicateEntryError):
		# A concurrent request created this shopper first: use theirs.
		frappe.db.rollback(save_point="ecommerce_customer")
		frappe.clear_messages()
		existing = _find("ecommerce_email", shopper.email) or _find("ecommerce_customer_id", shopper.id)
		if not existing:
			# Another shopper of the same name was created meanwhile and took the name ERPNext chose
			# ("Ada Lovelace - 2"); a fresh transaction sees it and chooses the next one.
			raise RunAgain(_("Customer name {0} was taken meanwhile.").format(customer.name)) from None
		return existing.name
	return customer.name


def update_contact(customer: str, shopper: CustomerIn) -> None:
	"""Keep the primary Contact's name and phone as the storefront has them."""
	contact_name = frappe.db.get_value("Customer", customer, "customer_primary_contact")
	if not contact_name:
		return
	contact = frappe.get_doc("Contact", contact_name)
	changed = False
	if shopper.phone and shopper.phone not in {row.phone for row in contact.phone_nos}:
		# The storefront's number becomes the one to call; older numbers stay on the Contact.
		for row in contact.phone_nos:
			row.is_primary_mobile_no = row.is_primary_phone = 0
		contact.add_phone(shopper.phone, is_primary_mobile_no=True, is_primary_phone=True)
		changed = True
	if shopper.first_name and contact.first_name != shopper.first_name:
		contact.first_name, contact.last_name, changed = shopper.first_name, shopper.last_name, True
	if changed:
		contact.save(ignore_permissions=True)


def linked_addresses(customer: str) -> list:
	names = frappe.get_all(
		"Dynamic Link",
		filters={"link_doctype": "Customer", "link_name": customer, "parenttype": "Address"},
		pluck="parent",
	)
	return [frappe.get_doc("Address", name) for name in names]


def address_fingerprint(doc) -> tuple:
	fold = lambda v: " ".join((v or "").casefold().split())  # noqa: E731
	code = frappe.db.get_value("Country", doc.country, "code", cache=True) or ""
	return tuple(
		fold(v) for v in (doc.address_line1, doc.address_line2, doc.city, doc.state, doc.pincode, code)
	)


def ensure_address(customer: str, address: Address, address_type: str, existing: list | None = None) -> str:
	"""The Address for ``address``: the same place is reused, a changed storefront address is updated,
	anything else is added. Existing addresses are never overwritten by an order."""
	existing = linked_addresses(customer) if existing is None else existing
	if address.id:
		same_id = next((doc for doc in existing if doc.get("ecommerce_address_id") == address.id), None)
		if same_id:
			if address_fingerprint(same_id) != address.fingerprint() or _preferences_differ(same_id, address):
				_fill_address(same_id, address)
				same_id.save(ignore_permissions=True)
			return same_id.name
	for doc in existing:
		if address_fingerprint(doc) == address.fingerprint():
			if address.id and not doc.get("ecommerce_address_id"):
				doc.db_set("ecommerce_address_id", address.id)
			if _preferences_differ(doc, address) and (
				address.is_default_billing or address.is_default_shipping
			):
				_fill_address(doc, address)
				doc.save(ignore_permissions=True)
			return doc.name
	doc = frappe.get_doc(
		{
			"doctype": "Address",
			"address_title": frappe.db.get_value("Customer", customer, "customer_name"),
			"address_type": address_type,
			"links": [{"link_doctype": "Customer", "link_name": customer}],
			"ecommerce_address_id": address.id,
		}
	)
	_fill_address(doc, address)
	doc.insert(ignore_permissions=True)
	existing.append(doc)
	return doc.name


def _preferences_differ(doc, address: Address) -> bool:
	return (
		bool(doc.is_primary_address) != address.is_default_billing
		or bool(doc.is_shipping_address) != address.is_default_shipping
	)


def _fill_address(doc, address: Address) -> None:
	doc.update(
		{
			"address_line1": address.line1,
			"address_line2": address.line2,
			"city": address.city,
			"state": address.state,
			"pincode": address.postcode,
			"country": country_name(address.country),
			"phone": address.phone,
			"is_primary_address": int(address.is_default_billing),
			"is_shipping_address": int(address.is_default_shipping),
		}
	)


def upsert_customer(payload: CustomerUpsert) -> str:
	"""A storefront sign-up or profile change: Customer, Contact and address book, without echo."""
	frappe.flags.ecommerce_inbound = True
	try:
		customer = ensure_customer(payload)
		name = payload.company_name or payload.full_name
		if frappe.db.get_value("Customer", customer, "customer_name") != name:
			frappe.db.set_value("Customer", customer, "customer_name", name)
		update_contact(customer, payload)
		existing = linked_addresses(customer)
		for address in payload.addresses:
			kind = "Shipping" if address.is_default_shipping and not address.is_default_billing else "Billing"
			ensure_address(customer, address, kind, existing)
		return customer
	finally:
		frappe.flags.ecommerce_inbound = False


# ---- outbound: ERPNext edits of a linked Customer reach the storefront --------------------------


def customer_snapshot(customer: str) -> dict | None:
	"""What the storefront is told about a Customer."""
	doc = frappe.db.get_value(
		"Customer",
		customer,
		["name", "customer_name", "ecommerce_customer_id", "ecommerce_email", "customer_primary_contact"],
		as_dict=True,
	)
	if not doc:
		return None
	contact = (
		frappe.db.get_value(
			"Contact",
			doc.customer_primary_contact,
			["first_name", "last_name", "phone", "mobile_no"],
			as_dict=True,
		)
		if doc.customer_primary_contact
		else None
	) or frappe._dict()
	addresses = []
	for address in linked_addresses(customer):
		addresses.append(
			{
				"id": address.get("ecommerce_address_id"),
				"erp_address": address.name,
				"line1": address.address_line1,
				"line2": address.address_line2,
				"city": address.city,
				"state": address.state,
				"postcode": address.pincode,
				"country": (
					frappe.db.get_value("Country", address.country, "code", cache=True) or ""
				).upper(),
				"phone": address.phone,
				"is_default_billing": bool(address.is_primary_address),
				"is_default_shipping": bool(address.is_shipping_address),
			}
		)
	return {
		"customer_id": doc.ecommerce_customer_id,
		"erp_customer": doc.name,
		"email": doc.ecommerce_email,
		"first_name": contact.first_name or doc.customer_name,
		"last_name": contact.last_name,
		"phone": contact.mobile_no or contact.phone,
		"addresses": addresses,
	}


def _linked_customers(doc) -> list[str]:
	if doc.doctype == "Customer":
		candidates = [doc.name]
	else:
		candidates = [link.link_name for link in doc.get("links") or [] if link.link_doctype == "Customer"]
	if not candidates:
		return []
	return frappe.get_all(
		"Customer",
		filters={"name": ("in", candidates), "ecommerce_email": ("is", "set")},
		pluck="name",
	)


def customer_edited(doc, method=None):
	"""Customer, Contact or Address edited in ERPNext: record it, unless the storefront sent the change."""
	if frappe.flags.ecommerce_inbound or not pillar_enabled("customers"):
		return
	from ecommerce_bridge.outbound.capture import record

	record("Customer", _linked_customers(doc))
