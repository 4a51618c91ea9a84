"""One process of stock movements for stock_push.py (c): ``_writer.py SITE SKU COUNT START_AT``."""

import sys
import time

from _harness import connect

site, sku, count, start_at = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
frappe = connect(site)
from ecommerce_bridge.tests import utils  # noqa: E402

time.sleep(max(0.0, start_at - time.time()))
for _ in range(count):
	utils.stock_entry("Material Receipt", sku, 1, target=utils.shop())
	frappe.db.commit()
print(time.time())
frappe.destroy()
