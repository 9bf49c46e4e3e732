"""A fake OpenAI-compatible model server on 127.0.0.1: fixed latency, a valid decision, counted.

Implements POST /v1/chat/completions (and the same under any path prefix ending in
/chat/completions) in OpenAI's response format. Every answer waits `latency` seconds,
then returns a decision JSON: a hold, or, for a model whose name starts with "open",
a small long in `open_symbol`. Requests are counted per model name as they arrive
(before the wait), so a caller can tell a call that was lost mid-flight from none.

Used by bench/bench_rounds.py and competitions/tests/test_celery_worker.py:

    with FakeLLMServer(latency=1.0) as server:
        base_url = server.base_url          # "http://127.0.0.1:PORT/v1"
        ... participants with llm_provider="openai_compatible", llm_config={"base_url": base_url}
        server.requests_by_model             # {"agent-0": 1, ...}

Run alone: python bench/fake_llm_server.py --latency 1.0 --port 8765 (GET /stats: the counts)
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

HOLD = {"reasoning": "fake model: nothing to do", "actions": [{"action": "hold"}]}


def decision_for(model: str, open_symbol: str, open_quantity: str) -> dict:
    if model.startswith("open"):
        return {
            "reasoning": "fake model: a small long",
            "actions": [
                {"action": "open", "symbol": open_symbol, "side": "long", "quantity": open_quantity, "leverage": "1"}
            ],
        }
    return HOLD


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # quiet: hundreds of requests per bench run
        pass

    def do_GET(self):
        if self.path.rstrip("/") == "/stats":  # for a server run in another process
            owner = self.server.owner
            self._send(200, {"requests": owner.requests_by_model, "answers": owner.answers_by_model,
                             "lost": owner.lost_by_model})
            return
        self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            self._send(400, {"error": {"message": "body is not JSON", "type": "invalid_request_error"}})
            return
        model = str(request.get("model", ""))
        owner = self.server.owner
        owner._arrived(model)
        time.sleep(owner.latency)
        content = json.dumps(decision_for(model, owner.open_symbol, owner.open_quantity))
        prompt_chars = sum(len(str(m.get("content", ""))) for m in request.get("messages", []))
        payload = {
            "id": f"chatcmpl-fake-{owner.requests}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
            ],
            "usage": {
                "prompt_tokens": prompt_chars // 4,
                "completion_tokens": len(content) // 4,
                "total_tokens": prompt_chars // 4 + len(content) // 4,
            },
        }
        try:
            self._send(200, payload)
        except (BrokenPipeError, ConnectionResetError):
            # the caller died mid-flight (a killed worker): counted as lost, not as answered
            owner._lost(model)
            return
        owner._answered(model)

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # 50 agents connect at once
    owner: FakeLLMServer


class FakeLLMServer:
    """The server on a background thread; counts are safe to read from any thread."""

    def __init__(self, *, latency: float = 1.0, port: int = 0, open_symbol: str = "BTC/USDT",
                 open_quantity: str = "0.001"):
        self.latency = latency
        self.open_symbol = open_symbol
        self.open_quantity = open_quantity
        self._lock = threading.Lock()
        self._arrivals: Counter[str] = Counter()
        self._answers: Counter[str] = Counter()
        self._losses: Counter[str] = Counter()  # answers whose caller had gone
        self._httpd = _Server(("127.0.0.1", port), _Handler)
        self._httpd.owner = self
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def requests(self) -> int:
        with self._lock:
            return sum(self._arrivals.values())

    @property
    def requests_by_model(self) -> dict[str, int]:
        with self._lock:
            return dict(self._arrivals)

    @property
    def answers_by_model(self) -> dict[str, int]:
        with self._lock:
            return dict(self._answers)

    @property
    def lost_by_model(self) -> dict[str, int]:
        with self._lock:
            return dict(self._losses)

    def reset(self) -> None:
        with self._lock:
            self._arrivals.clear()
            self._answers.clear()
            self._losses.clear()

    def wait_for_requests(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.requests >= count:
                return True
            time.sleep(0.02)
        return self.requests >= count

    def _arrived(self, model: str) -> None:
        with self._lock:
            self._arrivals[model] += 1

    def _answered(self, model: str) -> None:
        with self._lock:
            self._answers[model] += 1

    def _lost(self, model: str) -> None:
        with self._lock:
            self._losses[model] += 1

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="fake-llm", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=1.0, help="seconds before each answer")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    server = FakeLLMServer(latency=args.latency, port=args.port)
    print(f"fake model server on {server.base_url} (latency {args.latency}s); Ctrl-C to stop", flush=True)
    try:
        server._httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server._httpd.server_close()
        print(f"served {server.requests} requests")


if __name__ == "__main__":
    main()
