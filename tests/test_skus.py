"""Tests of SKU normalisation and collision finding in skus.py."""

from ecommerce_bridge.skus import find_collisions, normalize_sku


def test_spellings_of_one_sku_share_a_key():
	assert normalize_sku("SKU-001") == normalize_sku("sku_001") == normalize_sku(" Sku 001 ") == "sku-001"
	assert normalize_sku("sku -_ 001") == "sku-001"


def test_different_skus_differ():
	assert normalize_sku("SKU-001") != normalize_sku("SKU-002")
	assert normalize_sku("SKU-001") != normalize_sku("SKU-0010")
	assert normalize_sku("SKU001") != normalize_sku("SKU-001")


def test_nothing_is_an_empty_key():
	assert normalize_sku(None) == ""
	assert normalize_sku("") == ""
	assert normalize_sku(" - ") == ""


def test_find_collisions_groups_codes_sharing_a_key():
	codes = ["SKU-001", "sku_001", "SKU-002", " Sku 001 ", "TSHIRT-RED", "tshirt red", "MUG"]
	assert find_collisions(codes) == {
		"sku-001": sorted(["SKU-001", "sku_001", " Sku 001 "]),
		"tshirt-red": ["TSHIRT-RED", "tshirt red"],
	}


def test_find_collisions_ignores_unique_and_empty_codes():
	assert find_collisions(["A-1", "A-2", "", None, "  "]) == {}


def test_escape_like_leaves_no_wildcards():
	from ecommerce_bridge.db import escape_like

	assert escape_like("A_B%C\\D") == "A\\_B\\%C\\\\D"
	assert escape_like("Ada Lovelace - ") == "Ada Lovelace - "
