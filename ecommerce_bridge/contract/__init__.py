"""The storefront contract in code: payload models and request signing. Pure Python, no frappe."""
