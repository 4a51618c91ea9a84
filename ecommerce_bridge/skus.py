"""SKU normalisation: how a storefront SKU finds its ERPNext Item.

The rule (documented in the README): trim, fold case, and treat runs of spaces, ``-`` and ``_`` as one
separator. So ``SKU-001``, ``sku_001`` and `` Sku 001 `` are one key. Two Items whose codes share a key
are a conflict that a person must resolve; the app never guesses between them. Pure Python.
"""

import re

_SEPARATORS = re.compile(r"[\s\-_]+")


def normalize_sku(sku: str | None) -> str:
	"""The comparison key of a SKU; an empty string for nothing."""
	if not sku:
		return ""
	return _SEPARATORS.sub("-", str(sku).strip().casefold()).strip("-")


def find_collisions(codes) -> dict[str, list[str]]:
	"""Keys shared by more than one code, each with its codes sorted: the SKU Audit's first check."""
	by_key: dict[str, list[str]] = {}
	for code in codes:
		by_key.setdefault(normalize_sku(code), []).append(code)
	return {key: sorted(group) for key, group in by_key.items() if key and len(group) > 1}
