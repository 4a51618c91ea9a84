"""Shared fixtures for the pure-Python tests: a running reference storefront and scripted local servers.

Everything here is real HTTP on loopback; nothing patches requests or urllib3, so retries, timeouts and
signatures are exercised exactly as in production.
"""

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from ecommerce_bridge.contract.signing import SIGNATURE_HEADER, sign
from ecommerce_bridge.storefront import ReferenceStorefront

SECRET = "test-signing-secret-6f1c"
TOKEN = "test-api-token-93ab"


@pytest.fixture
def storefront():
	with ReferenceStorefront(SECRET, api_token=TOKEN) as shop:
		yield shop


@pytest.fixture
def call(storefront):
	"""Make a signed request to the storefront: ``call("POST", "/v1/...", payload)`` -> response."""

	def _call(
		method, path, payload=None, *, raw=None, secret=SECRET, token=TOKEN, timestamp=None, sign_it=True
	):
		body = raw if raw is not None else (b"" if payload is None else json.dumps(payload).encode())
		headers = {"Content-Type": "application/json"}
		if sign_it:
			headers[SIGNATURE_HEADER] = sign(secret, body, timestamp=timestamp)
		if token:
			headers["Authorization"] = f"Bearer {token}"
		return requests.request(method, storefront.url + path, data=body or None, headers=headers, timeout=5)

	return _call


class ScriptedServer:
	"""A tiny local HTTP server that plays back ``(status, headers, body, delay)`` answers in order.

	Once the script runs out the last answer repeats. ``hits`` counts the requests it received.
	"""

	def __init__(self, script):
		self.script = list(script)
		self.hits = 0
		self._lock = threading.Lock()
		outer = self

		class Handler(BaseHTTPRequestHandler):
			protocol_version = "HTTP/1.1"

			def log_message(self, format, *args):
				pass

			def _answer(self):
				length = int(self.headers.get("Content-Length") or 0)
				if length:
					self.rfile.read(length)
				with outer._lock:
					step = outer.script[min(outer.hits, len(outer.script) - 1)]
					outer.hits += 1
				status, headers, body, delay = step
				if delay:
					time.sleep(delay)
				data = json.dumps(body).encode()
				try:
					self.send_response(status)
					for name, value in headers.items():
						self.send_header(name, value)
					self.send_header("Content-Type", "application/json")
					self.send_header("Content-Length", str(len(data)))
					self.end_headers()
					self.wfile.write(data)
				except OSError:
					# The client gave up waiting (the timeout test); that is the point.
					self.close_connection = True

			do_GET = do_POST = _answer

		class Server(ThreadingHTTPServer):
			daemon_threads = True

			def handle_error(self, request, client_address):
				pass

		self._server = Server(("127.0.0.1", 0), Handler)
		self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
		self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})
		self._thread.daemon = True
		self._thread.start()

	def stop(self):
		self._server.shutdown()
		self._server.server_close()
		self._thread.join(timeout=5)


@pytest.fixture
def scripted_server():
	servers = []

	def _start(*script):
		server = ScriptedServer(script)
		servers.append(server)
		return server

	yield _start
	for server in servers:
		server.stop()


@pytest.fixture
def closed_port():
	"""A loopback port nobody listens on, so connecting to it is refused at once."""
	with socket.socket() as sock:
		sock.bind(("127.0.0.1", 0))
		port = sock.getsockname()[1]
	return port
