"""ecommerce_bridge: ERPNext is the source of truth; the storefront is kept in step with it."""

__version__ = "0.1.0"
