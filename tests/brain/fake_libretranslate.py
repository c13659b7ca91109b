"""A loopback double of LibreTranslate's documented `POST /translate` (JSON body q, source, target,
format, api_key; answer {"translatedText": ...}; errors {"error": ...} with 400/403/429/500)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeLibreTranslate:
    def __init__(self, dictionary: dict[tuple[str, str], dict[str, str]], *, api_key: str = "") -> None:
        self.dictionary = dictionary  # (source, target) -> {text: translation}
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []
        self.fail_with: int | None = None
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                if self.path != "/translate":
                    return self._send(404, {"error": "Not Found"})
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                outer.requests.append(body)
                if outer.fail_with:
                    return self._send(outer.fail_with, {"error": "Slowdown: too many requests"})
                if outer.api_key and body.get("api_key") != outer.api_key:
                    return self._send(403, {"error": "Invalid API key"})
                for field in ("q", "source", "target"):
                    if not body.get(field):
                        return self._send(400, {"error": f"Invalid request: missing {field} parameter"})
                table = outer.dictionary.get((body["source"], body["target"]), {})
                return self._send(200, {"translatedText": table.get(body["q"], f"[{body['target']}] {body['q']}")})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeLibreTranslate:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
