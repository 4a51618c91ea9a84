"""Tests of the reference storefront over real HTTP: versioning, renames, tombstones, auth, feed, admin."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from ecommerce_bridge.contract.signing import SIGNATURE_HEADER, sign
from ecommerce_bridge.storefront import ReferenceStorefront, send_signed
from tests.conftest import SECRET, TOKEN


def products(call, *entries):
	response = call("POST", "/v1/products/batch", {"products": list(entries)})
	assert response.status_code == 200, response.text
	return [result["status"] for result in response.json()["results"]]


def product(sku, version, **fields):
	return {"sku": sku, "version": version, **fields}


def test_health(call):
	response = call("GET", "/health")
	assert response.status_code == 200
	assert response.json() == {"status": "ok", "storefront": "reference"}


def test_product_versions_never_go_backwards(call, storefront):
	assert products(call, product("SKU-1", 2, name="Mug v2", price="9.00")) == ["applied"]
	assert products(call, product("SKU-1", 1, name="Mug v1", price="1.00")) == ["stale"]
	assert products(call, product("SKU-1", 2, name="Mug again")) == ["stale"]
	assert storefront.products["SKU-1"] == {"sku": "SKU-1", "version": 2, "name": "Mug v2", "price": "9.00"}
	assert products(call, product("SKU-1", 5, price="11.00")) == ["applied"]
	assert storefront.products["SKU-1"] == {"sku": "SKU-1", "version": 5, "name": "Mug v2", "price": "11.00"}


def test_stale_rule_applies_within_one_batch(call, storefront):
	statuses = products(call, product("A", 3, name="three"), product("A", 2, name="two"), product("B", 1))
	assert statuses == ["applied", "stale", "applied"]
	assert storefront.products["A"]["name"] == "three"


def test_bad_entries_are_reported_and_do_not_block_the_batch(call, storefront):
	response = call(
		"POST",
		"/v1/products/batch",
		{"products": [{"sku": "A"}, product("B", True), product("C", 1, price="abc"), "x", product("D", 1)]},
	)
	results = response.json()["results"]
	assert [result["status"] for result in results] == ["error", "error", "error", "error", "applied"]
	assert "version" in results[0]["error"] and "price" in results[2]["error"]
	assert list(storefront.products) == ["D"]


def test_storefront_owned_fields_survive_updates(call, storefront):
	products(call, product("SKU-1", 1, name="Mug", price="9.00"))
	storefront.set_storefront_fields("SKU-1", description="Hand-made", images=["mug.jpg"])
	products(call, product("SKU-1", 2, name="Big Mug", description="from ERP", images=[]))
	record = storefront.products["SKU-1"]
	assert record["name"] == "Big Mug"
	assert record["description"] == "Hand-made"
	assert record["images"] == ["mug.jpg"]
	with pytest.raises(ValueError):
		storefront.set_storefront_fields("SKU-1", price="0.01")


def test_rename_moves_the_record_and_its_stock(call, storefront):
	products(call, product("OLD", 1, name="Mug", price="9.00"))
	storefront.set_storefront_fields("OLD", description="Hand-made")
	call("POST", "/v1/inventory/batch", {"items": [{"sku": "OLD", "qty": 7, "version": 4}]})

	assert products(call, product("NEW", 2, renamed_from="OLD", name="Mug")) == ["applied"]
	assert "OLD" not in storefront.products
	assert storefront.products["NEW"] == {
		"sku": "NEW",
		"version": 2,
		"name": "Mug",
		"price": "9.00",
		"description": "Hand-made",
	}
	assert storefront.inventory == {"NEW": {"qty": 7, "version": 4}}
	# A late update still addressed to the old SKU must not bring it back.
	assert products(call, product("OLD", 1, name="ghost")) == ["stale"]
	assert "OLD" not in storefront.products


def test_delete_leaves_a_tombstone(call, storefront):
	products(call, product("SKU-1", 1, name="Mug"))
	assert products(call, product("SKU-1", 3, deleted=True)) == ["applied"]
	assert "SKU-1" not in storefront.products
	assert products(call, product("SKU-1", 2, name="resurrected?")) == ["stale"]
	assert "SKU-1" not in storefront.products
	assert products(call, product("SKU-1", 4, name="Back in range")) == ["applied"]
	assert storefront.products["SKU-1"]["name"] == "Back in range"


def test_inventory_versions(call, storefront):
	response = call(
		"POST",
		"/v1/inventory/batch",
		{"items": [{"sku": "A", "qty": 5, "version": 2}, {"sku": "A", "qty": 1, "version": 1}]},
	)
	assert [r["status"] for r in response.json()["results"]] == ["applied", "stale"]
	response = call("POST", "/v1/inventory/batch", {"items": [{"sku": "A", "qty": "many", "version": 9}]})
	assert response.json()["results"][0]["status"] == "error"
	assert storefront.inventory == {"A": {"qty": 5, "version": 2}}


def test_customers_are_keyed_by_erp_customer(call, storefront):
	entry = {
		"customer_id": None,
		"erp_customer": "CUST-0001",
		"email": "jane@example.com",
		"first_name": "Jane",
		"last_name": "Doe",
		"phone": None,
		"addresses": [{"line1": "1 Main St", "city": "Berlin", "country": "DE"}],
		"version": 1,
	}
	first = call("POST", "/v1/customers/batch", {"customers": [entry]}).json()["results"][0]
	assert first["erp_customer"] == "CUST-0001" and first["status"] == "applied"
	customer_id = first["customer_id"]
	assert storefront.customers[customer_id]["email"] == "jane@example.com"

	stale = call("POST", "/v1/customers/batch", {"customers": [{**entry, "email": "old@example.com"}]})
	assert stale.json()["results"][0] == {
		"erp_customer": "CUST-0001",
		"status": "stale",
		"customer_id": customer_id,
	}
	newer = call(
		"POST", "/v1/customers/batch", {"customers": [{**entry, "first_name": "Janet", "version": 2}]}
	)
	assert newer.json()["results"][0]["customer_id"] == customer_id
	assert storefront.customers[customer_id]["first_name"] == "Janet"
	assert len(storefront.customers) == 1


def test_order_status_versions(call, storefront):
	update = {
		"order_id": "SF-1",
		"status": "shipped",
		"lines": [],
		"shipments": [{"tracking": "T1"}],
		"version": 3,
	}
	assert call("POST", "/v1/orders/status", {"orders": [update]}).json()["results"] == [
		{"order_id": "SF-1", "status": "applied"}
	]
	late = {**update, "status": "processing", "version": 2}
	assert call("POST", "/v1/orders/status", {"orders": [late]}).json()["results"][0]["status"] == "stale"
	assert storefront.order_status["SF-1"]["status"] == "shipped"
	assert storefront.order_status["SF-1"]["shipments"] == [{"tracking": "T1"}]


def test_requests_without_valid_credentials_are_refused(call, storefront):
	payload = {"products": [product("SKU-1", 1)]}
	refused = [
		call("POST", "/v1/products/batch", payload, sign_it=False),
		call("POST", "/v1/products/batch", payload, secret="not-the-secret"),
		call("POST", "/v1/products/batch", payload, timestamp=int(time.time()) - 301),
		call("POST", "/v1/products/batch", payload, token=None),
		call("POST", "/v1/products/batch", payload, token="wrong-token"),
		call("GET", "/health", sign_it=False),
	]
	for response in refused:
		assert response.status_code == 401
		assert response.json()["error"]
		assert SECRET not in response.text and TOKEN not in response.text
	assert storefront.products == {}


def test_signature_must_cover_the_exact_body(storefront):
	signed_body = b'{"items": [{"sku": "A", "qty": 1, "version": 1}]}'
	headers = {SIGNATURE_HEADER: sign(SECRET, signed_body), "Authorization": f"Bearer {TOKEN}"}
	sent = signed_body.replace(b'"qty": 1', b'"qty": 1000')
	response = requests.post(storefront.url + "/v1/inventory/batch", data=sent, headers=headers, timeout=5)
	assert response.status_code == 401
	assert storefront.inventory == {}


def test_a_header_with_non_ascii_digits_is_a_401_not_a_crash(storefront):
	headers = {SIGNATURE_HEADER: "t=\u00b2,v1=00", "Authorization": f"Bearer {TOKEN}"}
	response = requests.get(storefront.url + "/health", headers=headers, timeout=5)
	assert response.status_code == 401


def test_batches_above_1000_entries_are_413(call, storefront):
	items = [{"sku": f"S{i}", "qty": 1, "version": 1} for i in range(1001)]
	assert call("POST", "/v1/inventory/batch", {"items": items}).status_code == 413
	assert storefront.inventory == {}
	assert call("POST", "/v1/inventory/batch", {"items": items[:1000]}).status_code == 200
	assert len(storefront.inventory) == 1000


def test_malformed_bodies_are_400(call):
	assert call("POST", "/v1/products/batch", raw=b"{not json").status_code == 400
	assert call("POST", "/v1/products/batch", raw=b"[1, 2]").status_code == 400
	assert call("POST", "/v1/products/batch", {"items": []}).status_code == 400


def test_unknown_paths_are_404_and_wrong_methods_405(call, storefront):
	assert call("GET", "/v1/unknown").status_code == 404
	assert requests.get(storefront.url + "/elsewhere", timeout=5).status_code == 404
	assert call("GET", "/v1/products/batch").status_code == 405


def test_calls_are_recorded(call, storefront):
	products(call, product("A", 1), product("B", 1))
	call("GET", "/health")
	assert storefront.calls == [
		{"method": "POST", "path": "/v1/products/batch", "count": 2, "status": 200},
		{"method": "GET", "path": "/health", "count": 0, "status": 200},
	]
	assert storefront.call_count("/v1/products/batch") == 1
	assert storefront.call_count("/v1/inventory/batch") == 0


def test_set_down_answers_every_contract_call_with_that_status(call, storefront):
	storefront.set_down(503)
	assert call("GET", "/health").status_code == 503
	assert call("POST", "/v1/products/batch", {"products": [product("A", 1)]}).status_code == 503
	assert requests.get(storefront.url + "/health", timeout=5).status_code == 503
	assert storefront.products == {}
	storefront.set_down(None)
	assert call("GET", "/health").status_code == 200
	with pytest.raises(ValueError):
		storefront.set_down(200)


def feed(call, **params):
	query = "&".join(f"{name}={value}" for name, value in params.items())
	response = call("GET", "/v1/orders" + ("?" + query if query else ""))
	assert response.status_code == 200, response.text
	return response.json()


def test_orders_feed_filters_and_pages_oldest_first(call, storefront):
	storefront.add_order({"order_id": "O-3", "created_at": "2024-05-03T09:00:00Z"})
	storefront.add_order({"order_id": "O-1", "created_at": "2024-05-01T09:00:00Z"})
	storefront.add_order(
		{"order_id": "O-0", "created_at": "2024-04-01T09:00:00Z", "updated_at": "2024-05-02T12:00:00+02:00"}
	)
	storefront.add_order({"order_id": "O-2", "created_at": "2024-05-02T09:00:00Z"})
	storefront.add_order({"order_id": "O-4", "created_at": "2024-05-04T09:00:00Z"})
	assert storefront.orders["O-1"]["updated_at"] == "2024-05-01T09:00:00Z"

	everything = feed(call)
	assert [o["order_id"] for o in everything["orders"]] == ["O-1", "O-2", "O-0", "O-3", "O-4"]
	assert everything["next_cursor"] is None

	since = "2024-05-02T09:00:00Z"
	page = feed(call, updated_since=since, limit=2)
	assert [o["order_id"] for o in page["orders"]] == ["O-2", "O-0"]
	assert page["next_cursor"]
	# An order arriving mid-paging with an older timestamp than the cursor does not shift the pages.
	storefront.add_order({"order_id": "O-1b", "created_at": "2024-05-01T10:00:00Z"})
	page = feed(call, updated_since=since, limit=2, cursor=page["next_cursor"])
	assert [o["order_id"] for o in page["orders"]] == ["O-3", "O-4"]
	assert page["next_cursor"] is None

	assert feed(call, updated_since="2024-06-01T00:00:00%2B00:00")["orders"] == []


def test_catalogue_lists_every_product_by_sku_in_pages(call, storefront):
	products(call, product("B", 1, name="Bee"), product("A", 1, name="Ay"), product("C", 1, deleted=True))
	storefront.add_storefront_product("HAND-MADE", name="Made in the shop's back office")
	first = call("GET", "/v1/products?limit=2").json()
	assert [p["sku"] for p in first["products"]] == ["A", "B"]
	rest = call("GET", f"/v1/products?limit=2&cursor={first['next_cursor']}").json()
	assert [p["sku"] for p in rest["products"]] == ["HAND-MADE"]
	assert rest["next_cursor"] is None
	assert call("POST", "/v1/products", {}).status_code == 405


def test_orders_feed_rejects_bad_parameters(call):
	assert call("GET", "/v1/orders?updated_since=yesterday").status_code == 400
	assert call("GET", "/v1/orders?limit=0").status_code == 400
	assert call("GET", "/v1/orders?limit=ten").status_code == 400
	assert call("GET", "/v1/orders?cursor=not-a-cursor").status_code == 400


def test_orders_feed_caps_the_limit(call, storefront):
	for number in range(501):
		storefront.add_order(
			{"order_id": f"O-{number:04d}", "created_at": f"2024-05-01T00:00:{number % 60:02d}Z"}
		)
	page = feed(call, limit=10_000)
	assert len(page["orders"]) == 500 and page["next_cursor"]
	assert len(feed(call)["orders"]) == 100


def test_admin_endpoints(call, storefront):
	admin = storefront.url + "/_admin"
	products(call, product("A", 1, name="Mug"))
	state = requests.get(admin + "/state", timeout=5).json()
	assert state["products"]["A"]["name"] == "Mug"
	assert state["call_counts"] == {"/v1/products/batch": 1}
	assert set(state) == {"products", "inventory", "customers", "order_status", "call_counts"}

	assert requests.post(admin + "/down", json={"status": 503}, timeout=5).status_code == 200
	assert call("GET", "/health").status_code == 503
	assert requests.post(admin + "/down", json={"status": None}, timeout=5).status_code == 200
	assert call("GET", "/health").status_code == 200
	assert requests.post(admin + "/down", json={"status": "soon"}, timeout=5).status_code == 400

	response = requests.post(
		admin + "/orders", json={"order": {"order_id": "O-9", "created_at": "2024-01-01"}}, timeout=5
	)
	assert response.status_code == 200
	assert [o["order_id"] for o in feed(call)["orders"]] == ["O-9"]
	assert requests.post(admin + "/orders", json={"order": {}}, timeout=5).status_code == 400

	assert requests.post(admin + "/reset", timeout=5).status_code == 200
	assert storefront.products == {} and storefront.calls == [] and storefront.orders == {}
	assert requests.get(admin + "/nothing", timeout=5).status_code == 404


def test_stop_closes_pooled_connections(storefront):
	session = requests.Session()
	assert session.get(storefront.url + "/_admin/state", timeout=5).status_code == 200
	url = storefront.url
	storefront.stop()
	with pytest.raises(requests.ConnectionError):
		session.get(url + "/_admin/state", timeout=2)


def test_send_signed_is_accepted_by_a_verifying_server():
	with ReferenceStorefront(SECRET) as shop:
		status, answer = send_signed(
			shop.url + "/v1/inventory/batch", SECRET, {"items": [{"sku": "A", "qty": 2, "version": 1}]}
		)
		assert (status, answer) == (200, {"results": [{"sku": "A", "status": "applied"}]})
		assert send_signed(shop.url + "/health", SECRET, None, method="GET") == (
			200,
			{"status": "ok", "storefront": "reference"},
		)
		status, answer = send_signed(shop.url + "/health", "wrong", None, method="GET")
		assert status == 401 and "error" in answer


def test_cli_serves_until_terminated():
	env = {**os.environ, "STOREFRONT_SIGNING_SECRET": SECRET, "PYTHONPATH": str(Path(__file__).parents[1])}
	process = subprocess.Popen(
		[sys.executable, "-m", "ecommerce_bridge.storefront", "--port", "0"],
		stdout=subprocess.PIPE,
		text=True,
		env=env,
	)
	try:
		line = process.stdout.readline()
		assert "listening on http://127.0.0.1:" in line
		assert SECRET not in line
		url = line.split("listening on ", 1)[1].split()[0]
		assert send_signed(url + "/health", SECRET, None, method="GET")[0] == 200
	finally:
		process.terminate()
		assert process.wait(timeout=5) == 0
