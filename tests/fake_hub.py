"""A small Hugging Face hub on loopback for download tests: serves the files of local folders as model
repositories, with the API endpoints huggingface_hub calls (model info with file sizes, HEAD and GET of
``resolve`` URLs). Unknown repositories answer 404 as the hub does. ``requests`` records every path asked for."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    def __init__(self, repos: dict[str, Path], delay_per_chunk: float = 0.0, cut_after: int | None = None):
        self.repos = {repo: Path(folder) for repo, folder in repos.items()}
        self.delay_per_chunk = delay_per_chunk  # seconds between 64 KiB chunks, to make a download slow
        self.cut_after = cut_after  # bytes of a file sent before the connection drops (a lost connection)
        self.requests: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_HEAD(self):
                hub.serve(self, body=False)

            def do_GET(self):
                hub.serve(self, body=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def files(self, repo: str) -> list[str]:
        root = self.repos[repo]
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())

    def serve(self, handler, body: bool) -> None:
        path = handler.path.split("?")[0]
        self.requests.append(path)
        if path.startswith("/api/models/"):
            repo = path[len("/api/models/"):].split("/revision/")[0]
            if repo not in self.repos:
                return self.not_found(handler, "RepoNotFound")
            info = {"id": repo, "modelId": repo, "sha": COMMIT, "private": False, "siblings": [
                {"rfilename": name, "size": (self.repos[repo] / name).stat().st_size} for name in self.files(repo)]}
            return self.send(handler, json.dumps(info).encode(), "application/json", body)
        repo, _, rest = path.lstrip("/").partition("/resolve/")
        name = rest.partition("/")[2]
        if repo not in self.repos:
            return self.not_found(handler, "RepoNotFound")
        file = self.repos[repo] / name
        if not name or not file.is_file():
            return self.not_found(handler, "EntryNotFound")
        self.send(handler, file.read_bytes(), "application/octet-stream", body, commit=True)

    def send(self, handler, data: bytes, content_type: str, body: bool, commit: bool = False) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        if commit:
            handler.send_header("X-Repo-Commit", COMMIT)
            handler.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        handler.end_headers()
        if not body:
            return
        for start in range(0, len(data), 1 << 16):
            if commit and self.cut_after is not None and start >= self.cut_after:
                handler.close_connection = True
                return
            if self.delay_per_chunk:
                time.sleep(self.delay_per_chunk)
            try:
                handler.wfile.write(data[start:start + (1 << 16)])
            except (BrokenPipeError, ConnectionResetError):
                return

    @staticmethod
    def not_found(handler, code: str) -> None:
        data = json.dumps({"error": f"{code}: not found"}).encode()
        handler.send_response(404)
        handler.send_header("X-Error-Code", code)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
