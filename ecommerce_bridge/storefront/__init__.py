"""The reference storefront: a small real HTTP server speaking the storefront side of the contract.

Used by the pure-Python tests, demos and benchmarks in place of a real shop. Standard library only (plus
the contract's signing module); ``shop.send_signed`` is how it calls ERPNext's whitelisted methods.
"""

__all__ = ["ReferenceStorefront", "send_signed"]


def __getattr__(name):
	# Imported lazily so that ``python -m ecommerce_bridge.storefront.server`` does not load the module
	# twice (runpy warns when the package has already imported it).
	if name == "ReferenceStorefront":
		from ecommerce_bridge.storefront.server import ReferenceStorefront

		return ReferenceStorefront
	if name == "send_signed":
		from ecommerce_bridge.storefront.shop import send_signed

		return send_signed
	raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
