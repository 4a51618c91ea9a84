"""Tests of the inbound payload models and their error messages in contract/models.py."""

import copy
from decimal import Decimal

import pytest
from pydantic import ValidationError

from ecommerce_bridge.contract.models import (
	Address,
	CustomerUpsert,
	OrderCancel,
	OrderIn,
	ReturnIn,
	describe_errors,
	normalize_email,
)


def valid_order() -> dict:
	return {
		"order_id": "SF-1001",
		"created_at": "2024-05-01T10:00:00Z",
		"currency": "eur",
		"customer": {"id": "C-7", "email": "jane@example.com", "first_name": "Jane", "last_name": "Doe"},
		"billing_address": {"line1": "1 Main St", "city": "Berlin", "postcode": "10115", "country": "de"},
		"lines": [
			{"sku": "SKU-001", "qty": 2, "unit_price": "10.00", "discount": "1.00"},
			{"sku": "SKU-002", "qty": "1.5", "unit_price": 4},
		],
		"discount_total": "2.00",
		"shipping": {"method": "DHL", "amount": "4.95"},
		"taxes": [{"code": "VAT19", "amount": "3.05"}],
		"total": "31.00",
		"payment": {"status": "paid", "gateway": "stripe", "transaction_id": "pi_123", "amount": "31.00"},
	}


def errors_of(payload: dict, model=OrderIn) -> list[dict]:
	with pytest.raises(ValidationError) as caught:
		model.model_validate(payload)
	return describe_errors(caught.value)


def fields_of(payload: dict, model=OrderIn) -> set[str]:
	return {error["field"] for error in errors_of(payload, model)}


def test_a_valid_order_parses():
	order = OrderIn.model_validate(valid_order())
	assert order.currency == "EUR"
	assert order.billing_address.country == "DE"
	assert order.lines[1].qty == Decimal("1.5")
	assert order.lines_total() == Decimal("25.00")
	assert order.expected_total() == order.total == Decimal("31.00")
	assert order.customer.full_name == "Jane Doe"


def test_missing_email_is_named():
	payload = valid_order()
	del payload["customer"]["email"]
	assert "customer.email" in fields_of(payload)


def test_bad_email_is_named_without_echoing_it():
	payload = valid_order()
	payload["customer"]["email"] = "jane-at-example"
	errors = errors_of(payload)
	assert [error["field"] for error in errors] == ["customer.email"]
	assert "jane-at-example" not in str(errors)


def test_negative_qty_is_named():
	payload = valid_order()
	payload["lines"][0]["qty"] = -1
	assert "lines.0.qty" in fields_of(payload)


def test_price_with_three_decimals_is_named():
	payload = valid_order()
	payload["lines"][1]["unit_price"] = "4.001"
	errors = errors_of(payload)
	assert [error["field"] for error in errors] == ["lines.1.unit_price"]
	assert "decimal places" in errors[0]["message"]


def test_totals_that_do_not_add_up_name_total():
	payload = valid_order()
	payload["total"] = "30.00"
	errors = errors_of(payload)
	assert [error["field"] for error in errors] == ["total"]
	assert "31.00" in errors[0]["message"]


@pytest.mark.parametrize("country", ["USA", "D", "1A", ""])
def test_bad_country_format_is_named(country):
	payload = valid_order()
	payload["billing_address"]["country"] = country
	assert "billing_address.country" in fields_of(payload)


def test_over_long_names_are_named():
	payload = valid_order()
	payload["customer"]["first_name"] = "J" * 141
	payload["billing_address"]["city"] = "B" * 141
	payload["lines"][0]["sku"] = "S" * 141
	assert {"customer.first_name", "billing_address.city", "lines.0.sku"} <= fields_of(payload)


def test_names_of_exactly_140_characters_are_fine():
	payload = valid_order()
	payload["customer"]["first_name"] = "J" * 140
	assert OrderIn.model_validate(payload).customer.first_name == "J" * 140


def test_empty_lines_are_named():
	payload = valid_order()
	payload["lines"] = []
	assert "lines" in fields_of(payload)


def test_paid_without_transaction_id_is_named():
	payload = valid_order()
	del payload["payment"]["transaction_id"]
	errors = errors_of(payload)
	assert [error["field"] for error in errors] == ["payment.transaction_id"]
	assert "transaction id" in errors[0]["message"]


def test_pending_payment_needs_no_transaction_id():
	payload = valid_order()
	payload["payment"] = {"status": "pending", "gateway": "bank-transfer"}
	assert OrderIn.model_validate(payload).payment.transaction_id is None


def test_several_problems_are_all_reported():
	payload = valid_order()
	payload["currency"] = "euro"
	payload["customer"]["email"] = "x"
	payload["lines"][0]["qty"] = 0
	assert {"currency", "customer.email", "lines.0.qty"} <= fields_of(payload)


def test_emails_are_trimmed_and_lower_cased():
	payload = valid_order()
	payload["customer"]["email"] = "  Jane.Doe@Example.COM "
	assert OrderIn.model_validate(payload).customer.email == "jane.doe@example.com"
	assert normalize_email("  A@B.CO ") == "a@b.co"
	assert normalize_email(None) == ""


def test_address_fingerprint_ignores_case_and_spacing():
	one = Address(line1="1  Main   St", city="Berlin", postcode="10115", country="de")
	two = Address(line1=" 1 main st ", city="BERLIN", postcode="10115 ", country="DE")
	assert one.fingerprint() == two.fingerprint()
	moved = Address(line1="2 Main St", city="Berlin", postcode="10115", country="DE")
	assert one.fingerprint() != moved.fingerprint()


def test_customer_upsert_needs_an_id_and_accepts_an_address_book():
	customer = CustomerUpsert.model_validate(
		{
			"id": "C-7",
			"email": "Jane@Example.com",
			"first_name": "Jane",
			"addresses": [
				{"line1": "1 Main St", "city": "Berlin", "country": "DE", "is_default_billing": True}
			],
		}
	)
	assert customer.email == "jane@example.com"
	assert customer.addresses[0].is_default_billing
	assert "id" in fields_of({"email": "a@b.co", "first_name": "A"}, CustomerUpsert)


def test_order_cancel_limits():
	assert OrderCancel.model_validate({"order_id": "SF-1", "reason": "changed mind"}).reason == "changed mind"
	assert "reason" in fields_of({"order_id": "SF-1", "reason": "x" * 501}, OrderCancel)
	assert "order_id" in fields_of({"order_id": "bad id with spaces"}, OrderCancel)


def test_valid_order_dict_is_not_mutated_by_parsing():
	payload = valid_order()
	before = copy.deepcopy(payload)
	OrderIn.model_validate(payload)
	assert payload == before


def test_a_return_needs_lines_or_a_refund_and_names_the_field():
	assert errors_of({"return_id": "R-1", "order_id": "SF-1"}, ReturnIn) == [
		{"field": "lines", "message": "a return needs returned lines, a refund, or both"}
	]
	refund_only = ReturnIn.model_validate(
		{
			"return_id": "R-1",
			"order_id": "SF-1",
			"refund": {"gateway": "stripe", "transaction_id": "re_1", "amount": "5.00"},
		}
	)
	assert refund_only.refund.amount == Decimal("5.00") and refund_only.lines == []


def test_return_lines_and_refunds_are_checked_field_by_field():
	fields = {
		e["field"]
		for e in errors_of(
			{
				"return_id": "R-1",
				"order_id": "SF-1",
				"lines": [{"sku": "", "qty": 0}],
				"refund": {"gateway": "stripe", "amount": "0"},
			},
			ReturnIn,
		)
	}
	assert fields == {"lines.0.sku", "lines.0.qty", "refund.transaction_id", "refund.amount"}


def test_a_late_cancellation_may_say_what_was_refunded():
	cancel = OrderCancel.model_validate(
		{"order_id": "SF-1", "refund": {"gateway": "stripe", "transaction_id": "re_9", "amount": 31}}
	)
	assert cancel.refund.amount == Decimal("31")
