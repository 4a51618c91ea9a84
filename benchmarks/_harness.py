"""What the benchmarks share: a connected site, the processes of a running bench, and figures.

Run every benchmark with the bench's Python from the bench folder, for example
``env/bin/python apps/ecommerce_bridge/benchmarks/orders_burst.py --site bridge.test``. Each starts the
processes it measures against (gunicorn web workers, RQ workers) and the reference storefront, and stops
them at the end, so that its figures say exactly what ran. Use a site kept for tests: benchmarks create
Items, stock, Customers and orders.
"""

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests

BENCH = Path(os.environ.get("FRAPPE_BENCH_DIR", "/opt/bench/frappe-bench"))


def arguments(description: str, **extra) -> argparse.Namespace:
	parser = argparse.ArgumentParser(description=description)
	parser.add_argument("--site", default=os.environ.get("BRIDGE_TEST_SITE", "bridge.test"))
	for name, (default, help_text) in extra.items():
		parser.add_argument(
			f"--{name.replace('_', '-')}", type=type(default), default=default, help=help_text
		)
	return parser.parse_args()


def connect(site: str):
	import frappe

	os.chdir(BENCH / "sites")
	frappe.init(site=site, sites_path=".")
	frappe.connect()
	frappe.set_user("Administrator")
	return frappe


def machine() -> str:
	cpus = os.cpu_count()
	memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
	return f"{platform.machine()}, {cpus} cores, {memory:.0f} GiB, Python {platform.python_version()}"


class Processes:
	"""gunicorn and RQ workers of this bench, started for one benchmark and stopped after it."""

	def __init__(self):
		self._procs: list[subprocess.Popen] = []
		self._logs = []

	def _start(self, name: str, argv: list[str]) -> None:
		log = open(f"/tmp/ecommerce-bridge-bench-{name}-{len(self._procs)}.log", "w")
		self._logs.append(log)
		self._procs.append(
			subprocess.Popen(argv, cwd=BENCH / "sites", stdout=log, stderr=subprocess.STDOUT, env=os.environ)
		)

	def web(self, site: str, workers: int = 2, port: int = 8011) -> str:
		self._start(
			"web",
			[
				str(BENCH / "env/bin/gunicorn"),
				"-b",
				f"127.0.0.1:{port}",
				"-w",
				str(workers),
				"-t",
				"120",
				"--preload",
				"frappe.app:application",
			],
		)
		url = f"http://127.0.0.1:{port}"
		for _ in range(120):
			try:
				if requests.get(f"{url}/api/method/ping", headers=site_header(site), timeout=2).ok:
					return url
			except requests.RequestException:
				pass
			time.sleep(0.5)
		raise RuntimeError("gunicorn did not answer within a minute")

	def workers(self, site: str, count: int, queues: str = "short,default") -> None:
		for _ in range(count):
			self._start(
				"worker",
				[
					sys.executable,
					"-m",
					"frappe.utils.bench_helper",
					"frappe",
					"--site",
					site,
					"worker",
					"--queue",
					queues,
				],
			)
		time.sleep(3)

	def stop(self) -> None:
		for proc in self._procs:
			proc.terminate()
		for proc in self._procs:
			try:
				proc.wait(timeout=20)
			except subprocess.TimeoutExpired:
				proc.kill()
		for log in self._logs:
			log.close()


def site_header(site: str) -> dict:
	return {"X-Frappe-Site-Name": site}


def percentile(values, fraction: float) -> float:
	ordered = sorted(values)
	if not ordered:
		return float("nan")
	index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
	return ordered[index]


def describe_ms(values) -> str:
	return (
		f"median {statistics.median(values) * 1000:.0f} ms, p95 {percentile(values, 0.95) * 1000:.0f} ms"
		f" (n={len(values)})"
	)
