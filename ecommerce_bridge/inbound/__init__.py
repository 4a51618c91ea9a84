"""Storefront → ERPNext: validated payloads become ERPNext documents."""
