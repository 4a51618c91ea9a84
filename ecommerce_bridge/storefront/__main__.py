"""``python -m ecommerce_bridge.storefront``: serve the reference storefront until interrupted."""

from ecommerce_bridge.storefront.server import main

raise SystemExit(main())
