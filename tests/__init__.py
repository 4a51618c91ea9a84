"""Pure-Python tests of ecommerce_bridge: no frappe, real HTTP against local servers."""
