"""What the storefront sends to ERPNext, as pydantic models: the schema *is* the validation.

Every inbound payload is parsed by one of these models. A ``ValidationError`` is turned into a 422 whose
message names each bad field (see ``describe_errors``). Money travels as decimal strings or numbers with at
most two decimals; quantities are positive. Pure Python: importable without frappe.
"""

import re
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Money = Annotated[Decimal, Field(ge=0, max_digits=16, decimal_places=2)]
Quantity = Annotated[Decimal, Field(gt=0, max_digits=16, decimal_places=3)]
Name = Annotated[str, Field(min_length=1, max_length=140)]
ShortText = Annotated[str, Field(max_length=140)]
Email = Annotated[str, Field(max_length=140, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")]
StorefrontId = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$")]


class _Model(BaseModel):
	model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, frozen=True)


class Address(_Model):
	"""A postal address. ``country`` is an ISO 3166-1 alpha-2 code (``US``, ``DE``)."""

	id: StorefrontId | None = None
	name: ShortText | None = None
	line1: Name
	line2: ShortText | None = None
	city: Name
	state: ShortText | None = None
	postcode: Annotated[str, Field(max_length=20)] | None = None
	country: Annotated[str, Field(pattern=r"^[A-Za-z]{2}$")]
	phone: Annotated[str, Field(max_length=40)] | None = None
	is_default_billing: bool = False
	is_default_shipping: bool = False

	@field_validator("country")
	@classmethod
	def _upper(cls, value: str) -> str:
		return value.upper()

	def fingerprint(self) -> tuple:
		"""What makes two addresses the same place: case and spacing do not count."""
		fold = lambda v: " ".join((v or "").casefold().split())  # noqa: E731
		return tuple(
			fold(v) for v in (self.line1, self.line2, self.city, self.state, self.postcode, self.country)
		)


class CustomerIn(_Model):
	"""A storefront customer. ``id`` is empty for a guest checkout."""

	id: StorefrontId | None = None
	email: Email
	first_name: Name
	last_name: ShortText | None = None
	phone: Annotated[str, Field(max_length=40)] | None = None
	company_name: ShortText | None = None

	@field_validator("email")
	@classmethod
	def _normalise_email(cls, value: str) -> str:
		return normalize_email(value)

	@property
	def full_name(self) -> str:
		return " ".join(part for part in (self.first_name, self.last_name) if part)


class CustomerUpsert(CustomerIn):
	"""Body of ``upsert_customer``: a sign-up or profile change, with the address book."""

	id: StorefrontId
	addresses: Annotated[list[Address], Field(max_length=50)] = []


class OrderLine(_Model):
	line_id: StorefrontId | None = None
	sku: Annotated[str, Field(min_length=1, max_length=140)]
	name: ShortText | None = None
	qty: Quantity
	unit_price: Money
	discount: Money = Decimal("0")
	shipping_address: Address | None = None

	@model_validator(mode="after")
	def _discount_within_line(self):
		if self.discount > self.unit_price * self.qty:
			raise ValueError("discount: is larger than the line's amount")
		return self


class Shipping(_Model):
	method: ShortText | None = None
	amount: Money


class TaxLine(_Model):
	code: Annotated[str, Field(min_length=1, max_length=140)]
	description: ShortText | None = None
	amount: Money


class Payment(_Model):
	status: Literal["paid", "pending", "authorized"]
	gateway: Annotated[str, Field(min_length=1, max_length=140)]
	transaction_id: ShortText | None = None
	amount: Money | None = None

	@model_validator(mode="after")
	def _paid_needs_reference(self):
		if self.status == "paid" and not self.transaction_id:
			raise ValueError("transaction_id: a paid order needs the gateway's transaction id")
		return self


class OrderIn(_Model):
	"""Body of ``ingest_order``: one storefront checkout."""

	order_id: StorefrontId
	created_at: str | None = None
	currency: Annotated[str, Field(pattern=r"^[A-Za-z]{3}$")]
	customer: CustomerIn
	billing_address: Address
	shipping_address: Address | None = None
	lines: Annotated[list[OrderLine], Field(min_length=1, max_length=500)]
	discount_total: Money = Decimal("0")
	shipping: Shipping | None = None
	taxes: Annotated[list[TaxLine], Field(max_length=50)] = []
	total: Money
	payment: Payment | None = None

	@field_validator("currency")
	@classmethod
	def _upper(cls, value: str) -> str:
		return value.upper()

	@model_validator(mode="after")
	def _totals_add_up(self):
		expected = self.expected_total()
		if expected != self.total:
			raise ValueError(
				f"total: {self.total} does not equal lines - discounts + shipping + taxes = {expected}"
			)
		return self

	def lines_total(self) -> Decimal:
		return sum((line.unit_price * line.qty - line.discount for line in self.lines), Decimal("0"))

	def expected_total(self) -> Decimal:
		shipping = self.shipping.amount if self.shipping else Decimal("0")
		taxes = sum((tax.amount for tax in self.taxes), Decimal("0"))
		return (self.lines_total() - self.discount_total + shipping + taxes).quantize(Decimal("0.01"))


class Refund(_Model):
	"""Money the storefront gave back, through the gateway that took it."""

	gateway: Annotated[str, Field(min_length=1, max_length=140)]
	transaction_id: Name
	amount: Annotated[Decimal, Field(gt=0, max_digits=16, decimal_places=2)]


class OrderCancel(_Model):
	"""Body of ``cancel_order``. ``refund`` says what was paid back, if anything."""

	order_id: StorefrontId
	reason: Annotated[str, Field(max_length=500)] | None = None
	refund: Refund | None = None


class ReturnLine(_Model):
	"""Returned goods: the order line (by ``line_id``, else by ``sku``) and how many."""

	line_id: StorefrontId | None = None
	sku: Annotated[str, Field(min_length=1, max_length=140)]
	qty: Quantity


class ReturnIn(_Model):
	"""Body of ``ingest_return``: goods coming back and/or money going back, for one order."""

	return_id: StorefrontId
	order_id: StorefrontId
	created_at: str | None = None
	reason: Annotated[str, Field(max_length=500)] | None = None
	lines: Annotated[list[ReturnLine], Field(max_length=500)] = []
	refund: Refund | None = None

	@model_validator(mode="after")
	def _something_returned(self):
		if not self.lines and not self.refund:
			raise ValueError("lines: a return needs returned lines, a refund, or both")
		return self


def normalize_email(value: str | None) -> str:
	"""The matching key for e-mails: trimmed and lower-cased."""
	return (value or "").strip().lower()


_FIELD_PREFIX = re.compile(r"^(?:Value error, )?([a-z_]+): (.+)$", re.S)


def describe_errors(error: ValidationError) -> list[dict]:
	"""pydantic's errors as ``[{"field": "lines.0.sku", "message": "..."}]``, without echoing input values.

	Checks that span several fields raise ``ValueError("field: message")`` so the field is still named.
	"""
	described = []
	for item in error.errors(include_url=False, include_input=False):
		location, message = [str(part) for part in item["loc"]], item["msg"]
		named = _FIELD_PREFIX.match(message)
		if named and item["type"] == "value_error":
			location.append(named.group(1))
			message = named.group(2)
		described.append({"field": ".".join(location) or "body", "message": message})
	return described
