"""Reading Ecommerce Bridge Settings the way every room needs it: cached, with passwords on demand."""

import frappe

from ecommerce_bridge.outbound.client import CircuitBreaker, StorefrontClient

SETTINGS = "Ecommerce Bridge Settings"
_WAREHOUSES_KEY = "ecommerce_bridge:published_warehouses"
_BREAKER_KEY = "ecommerce_bridge:circuit"


def get_settings():
	return frappe.get_cached_doc(SETTINGS)


def pillar_enabled(pillar: str) -> bool:
	"""Is the bridge on, and is this pillar (products, stock, orders, customers) switched on?"""
	settings = get_settings()
	return bool(settings.enabled and settings.get(f"sync_{pillar}"))


def signing_secret() -> str | None:
	return get_settings().get_password("signing_secret", raise_exception=False)


def published_warehouses() -> frozenset[str]:
	"""The leaf warehouses whose stock the storefront sees (group warehouses expanded)."""
	cached = frappe.cache.get_value(_WAREHOUSES_KEY)
	if cached is None:
		cached = _expand_warehouses([row.warehouse for row in get_settings().warehouses])
		frappe.cache.set_value(_WAREHOUSES_KEY, cached)
	return frozenset(cached)


def _expand_warehouses(names: list[str]) -> list[str]:
	leaves = set()
	for name in names:
		bounds = frappe.db.get_value("Warehouse", name, ["lft", "rgt", "is_group"], as_dict=True)
		if not bounds:
			continue
		if not bounds.is_group:
			leaves.add(name)
			continue
		leaves.update(
			frappe.get_all(
				"Warehouse",
				filters={"lft": (">=", bounds.lft), "rgt": ("<=", bounds.rgt), "is_group": 0},
				pluck="name",
			)
		)
	return sorted(leaves)


def clear_settings_cache(*args, **kwargs):
	frappe.cache.delete_value(_WAREHOUSES_KEY)


class _RedisBreakerStore:
	"""Circuit-breaker state shared by every worker of the site."""

	def get(self) -> dict:
		return frappe.cache.get_value(_BREAKER_KEY) or {}

	def set(self, value: dict) -> None:
		frappe.cache.set_value(_BREAKER_KEY, value, expires_in_sec=3600)


def make_client(with_breaker: bool = True) -> StorefrontClient:
	settings = get_settings()
	if not settings.storefront_url:
		frappe.throw(frappe._("Set the Storefront Base URL in Ecommerce Bridge Settings first."))
	secret = settings.get_password("signing_secret", raise_exception=False)
	if not secret:
		frappe.throw(frappe._("Set the Signing Secret in Ecommerce Bridge Settings first."))
	breaker = CircuitBreaker(store=_RedisBreakerStore()) if with_breaker else None
	return StorefrontClient(
		settings.storefront_url,
		settings.get_password("api_token", raise_exception=False),
		secret,
		breaker=breaker,
	)
