"""Tests of StorefrontClient over real HTTP: signing, auth failures, retries, timeouts, circuit breaker."""

import time

import pytest

from ecommerce_bridge.outbound.client import (
	CircuitBreaker,
	CircuitOpenError,
	StorefrontClient,
	StorefrontError,
	make_session,
)
from tests.conftest import SECRET, TOKEN

OK = (200, {}, {"ok": True}, 0)


def client_for(url, secret=SECRET, token=TOKEN, retries=2, **kwargs):
	return StorefrontClient(
		url, token, secret, session=make_session(retries=retries, backoff_factor=0.05), **kwargs
	)


def test_signed_batch_is_applied(storefront):
	client = client_for(storefront.url)
	answer = client.post(
		"/v1/products/batch",
		{"products": [{"sku": "SKU-1", "name": "Mug", "price": "9.50", "currency": "EUR", "version": 1}]},
	)
	assert answer == {"results": [{"sku": "SKU-1", "status": "applied"}]}
	assert storefront.products["SKU-1"]["price"] == "9.50"
	assert storefront.calls[-1] == {"method": "POST", "path": "/v1/products/batch", "count": 1, "status": 200}
	assert client.get("/health") == {"status": "ok", "storefront": "reference"}


def test_pages_walks_a_listing_to_its_last_page(storefront):
	for n in range(5):
		storefront.add_storefront_product(f"SKU-{n}")
	client = client_for(storefront.url)
	skus = [product["sku"] for product in client.pages("/v1/products", "products", {"limit": 2})]
	assert skus == ["SKU-0", "SKU-1", "SKU-2", "SKU-3", "SKU-4"]
	assert storefront.call_count("/v1/products") == 3


def test_wrong_secret_is_a_401_that_leaks_no_credentials(storefront):
	wrong = "wrong-secret-do-not-leak"
	client = client_for(storefront.url, secret=wrong)
	with pytest.raises(StorefrontError) as caught:
		client.post("/v1/inventory/batch", {"items": [{"sku": "SKU-1", "qty": 3, "version": 1}]})
	error = caught.value
	assert error.status_code == 401
	assert "signature" in error.body["error"]
	for secret in (wrong, SECRET, TOKEN):
		assert secret not in str(error)
		assert secret not in repr(error)
		assert secret not in repr(client)
	assert storefront.inventory == {}


def test_wrong_token_is_a_401(storefront):
	with pytest.raises(StorefrontError) as caught:
		client_for(storefront.url, token="not-the-token").get("/health")
	assert caught.value.status_code == 401
	assert "not-the-token" not in str(caught.value)


def test_429_with_retry_after_is_waited_out(scripted_server):
	server = scripted_server((429, {"Retry-After": "1"}, {"error": "slow down"}, 0), OK)
	started = time.monotonic()
	assert client_for(server.url).post("/v1/inventory/batch", {"items": []}) == {"ok": True}
	assert time.monotonic() - started >= 0.95
	assert server.hits == 2


def test_503_twice_then_success(scripted_server):
	down = (503, {}, {"error": "down"}, 0)
	server = scripted_server(down, down, OK)
	client = client_for(server.url, retries=2)
	assert client.post("/v1/products/batch", {"products": []}) == {"ok": True}
	assert server.hits == 3
	# The retries happened inside one call, which succeeded, so the breaker saw no failure.
	assert client.breaker.store.get() == {}


def test_persistent_503_gives_up_with_the_status(scripted_server):
	server = scripted_server((503, {}, {"error": "down"}, 0))
	with pytest.raises(StorefrontError) as caught:
		client_for(server.url, retries=2).get("/health")
	assert caught.value.status_code == 503
	assert server.hits == 3


def test_connection_refused_fails_fast(closed_port):
	client = client_for(f"http://127.0.0.1:{closed_port}")
	started = time.monotonic()
	with pytest.raises(StorefrontError) as caught:
		client.get("/health")
	assert time.monotonic() - started < 2
	assert caught.value.status_code is None
	assert "could not be reached" in str(caught.value)


def test_read_timeout_is_honoured(scripted_server):
	server = scripted_server((200, {}, {"ok": True}, 3))
	client = client_for(server.url, retries=1, read_timeout=0.3)
	started = time.monotonic()
	with pytest.raises(StorefrontError, match="ReadTimeout|could not be reached"):
		client.post("/v1/inventory/batch", {"items": []})
	elapsed = time.monotonic() - started
	# Two attempts of 0.3 s each, far less than the 3 s the server takes to answer.
	assert 0.55 <= elapsed < 2
	assert server.hits == 2


def test_circuit_breaker_opens_then_recovers(storefront):
	breaker = CircuitBreaker(failure_threshold=2, cooldown=0.5)
	client = client_for(storefront.url, retries=1, breaker=breaker)
	storefront.set_down(503)
	for _ in range(2):
		with pytest.raises(StorefrontError) as caught:
			client.get("/health")
		assert caught.value.status_code == 503
		assert not isinstance(caught.value, CircuitOpenError)
	reached = storefront.call_count("/health")
	assert reached == 4  # two calls, each tried twice

	with pytest.raises(CircuitOpenError):
		client.get("/health")
	assert storefront.call_count("/health") == reached

	storefront.set_down(None)
	time.sleep(0.6)
	assert client.get("/health")["status"] == "ok"
	assert storefront.call_count("/health") == reached + 1
	assert breaker.store.get() == {}


def test_client_errors_do_not_trip_the_breaker(storefront):
	breaker = CircuitBreaker(failure_threshold=1, cooldown=60)
	client = client_for(storefront.url, breaker=breaker)
	with pytest.raises(StorefrontError) as caught:
		client.get("/v1/nothing-here")
	assert caught.value.status_code == 404
	assert client.get("/health")["status"] == "ok"
