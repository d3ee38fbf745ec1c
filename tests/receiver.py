"""A connected system for the tests: a real HTTP receiver on loopback, run as its own process,
that verifies every request with the Standard Webhooks reference library (`standardwebhooks`,
independent of the portal's signing code) and applies each webhook-id once.

    python -m tests.receiver --port P --secret whsec_… --journal FILE
        [--fail-first N] [--accept --ack-url URL --ack-token TOKEN] [--delay SECONDS]

The journal has one JSON line when a request arrives (`received`) and one when it is
answered (`answered`: id, body, whether the signature verified, the status, whether it was
applied or a duplicate, when the attempt began and ended), and `acknowledged` lines.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2 as httpx
from standardwebhooks import Webhook, WebhookVerificationError


class Receiver:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.webhook = Webhook(args.secret)
        self.lock = threading.Lock()
        self.attempts: Counter[str] = Counter()
        self.applied: set[str] = set()
        # Open for the receiver's life, a line written out as it is written: tests read it
        # while requests arrive, and at hundreds a second reopening it would be the cost.
        self.journal = Path(args.journal).open("a", encoding="utf-8", buffering=1)  # noqa: SIM115

    def write(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.journal.write(json.dumps(entry) + "\n")

    def answer(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        started = time.time()
        message_id = headers.get("webhook-id", "")
        self.write({"event": "received", "id": message_id, "started": started})
        try:
            self.webhook.verify(body, headers)
        except WebhookVerificationError:
            return 401, {"event": "answered", "id": message_id, "verified": False,
                         "started": started}  # fmt: skip
        with self.lock:
            self.attempts[message_id] += 1
            attempt = self.attempts[message_id]
        time.sleep(self.args.delay)
        success = 202 if self.args.accept else 200
        status = 500 if attempt <= self.args.fail_first else success
        with self.lock:
            first = status < 300 and message_id not in self.applied
            if status < 300:
                self.applied.add(message_id)
        if status == 202 and first and b'"deletion.requested"' in body:
            threading.Thread(target=self.acknowledge, args=(message_id,), daemon=True).start()
        return status, {
            "event": "answered",
            "id": message_id,
            "verified": True,
            "attempt": attempt,
            "applied": first,
            "body": body.decode(),
            "started": started,
        }

    def acknowledge(self, message_id: str) -> None:
        """Deleted at leisure, then confirmed through the portal's API."""
        time.sleep(0.3)
        for _ in range(50):
            try:
                done = httpx.post(
                    f"{self.args.ack_url}/api/v1/deletions/{message_id}/ack",
                    headers={"authorization": f"Bearer {self.args.ack_token}"},
                    timeout=5,
                )
            except httpx.TransportError:
                done = None
            if done is not None and done.status_code == 200:
                self.write({"event": "acknowledged", "id": message_id})
                return
            time.sleep(0.2)


def serve(receiver: Receiver, port: int) -> None:
    class Handler(BaseHTTPRequestHandler):
        # Connections kept alive, as a connected system's web server keeps them: a new
        # connection per request would measure the receiver's accept loop.
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {key.lower(): value for key, value in self.headers.items()}
            status, entry = receiver.answer(headers, body)
            entry["status"] = status
            try:
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()
            finally:
                entry["ended"] = time.time()
                receiver.write(entry)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the journal is the record."""

    # A backlog as a web server's (nginx: 511), not socketserver's 5: a worker opening a
    # dozen connections at once would otherwise wait a second for each SYN dropped.
    class Server(ThreadingHTTPServer):
        request_queue_size = 128

    server = Server(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--journal", required=True)
    parser.add_argument("--fail-first", type=int, default=0, help="answer 500 to the first N")
    parser.add_argument("--accept", action="store_true", help="answer 202, acknowledge later")
    parser.add_argument("--ack-url", default="")
    parser.add_argument("--ack-token", default="")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before answering")
    args = parser.parse_args()
    serve(Receiver(args), args.port)


if __name__ == "__main__":
    main()
