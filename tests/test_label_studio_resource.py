"""The LabelStudio resource's HTTP and its one-line errors, against small local stand-ins.

No Label Studio here: a closed port, and a stub HTTP server on 127.0.0.1 that
answers the way Label Studio does (401 for a bad token, 400 with its
validation errors, paged project lists, the JWT refresh of a personal token).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipelines import labelstudio_server as server
from resources.label_studio import LabelStudio, LabelStudioError


class Stub(BaseHTTPRequestHandler):
    """Label Studio in a few lines: legacy token "good", PAT "h.p.s", two pages of projects."""

    routes: dict = {}
    seen: list = []

    def _reply(self, code: int, body) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        Stub.seen.append((method, self.path, self.headers.get("Authorization"), body))
        if self.path == "/api/token/refresh/":
            ok = body == {"refresh": "h.p.s"}
            return self._reply(200 if ok else 401, {"access": "acc"} if ok else {})
        if self.headers.get("Authorization") not in ("Token good", "Bearer acc"):
            return self._reply(401, {"detail": "Invalid token."})
        path = self.path.split("?")[0]
        if path == "/api/projects/" and method == "GET":
            page = 2 if "page=2" in self.path else 1
            return self._reply(200, {"count": 2, "next": "more" if page == 1 else None,
                                     "results": [{"id": page, "title": f"project {page}"}]})
        if path == "/api/projects/" and method == "POST":
            return self._reply(400, {"validation_errors": {
                "title": ["Ensure this field has at least 3 characters."]}})
        return self._reply(404, {"detail": "Not found."})

    def do_GET(self):  # noqa: N802
        self._handle("GET")

    def do_POST(self):  # noqa: N802
        self._handle("POST")

    def log_message(self, *args):
        pass


@pytest.fixture
def stub():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    Stub.seen = []
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_closed_port_says_where_and_how_to_start_it():
    url = f"http://127.0.0.1:{server.free_port()}"
    with pytest.raises(LabelStudioError) as info:
        LabelStudio(url=url, token="t", timeout_s=5).find_project("x")
    message = str(info.value)
    assert message.startswith(f"Label Studio is not reachable at {url} (connection refused)")
    assert "make labelstudio" in message and "LABEL_STUDIO_URL" in message
    assert "\n" not in message and info.value.__cause__ is None  # one line, no chained wall


def test_a_wrong_token_says_which_variables_to_set(stub):
    with pytest.raises(LabelStudioError) as info:
        LabelStudio(url=stub, token="bad").find_project("x")
    message = str(info.value)
    assert f"Label Studio at {stub} rejected the API token (HTTP 401" in message
    assert "LABEL_STUDIO_API_KEY" in message and "LABEL_STUDIO_USER_TOKEN" in message
    assert "\n" not in message


def test_a_refused_request_gives_label_studios_reason(stub):
    with pytest.raises(LabelStudioError, match=r"refused POST /api/projects/ \(HTTP 400\): "
                       r"\{'title': \['Ensure this field has at least 3 characters.'\]\}"):
        LabelStudio(url=stub, token="good").ensure_project("qc", "<View/>")


def test_paged_lists_and_env_defaults(stub, monkeypatch):
    monkeypatch.setenv("LABEL_STUDIO_URL", stub + "/")
    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    monkeypatch.setenv("LABEL_STUDIO_USER_TOKEN", "good")
    ls = LabelStudio()
    assert ls.base_url == stub
    assert ls.find_project("project 2") == 2 and ls.find_project("project 3") is None
    assert [s[2] for s in Stub.seen] == ["Token good"] * 4


def test_a_personal_access_token_is_traded_for_a_bearer(stub, monkeypatch):
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "h.p.s")
    ls = LabelStudio(url=stub)
    assert ls.find_project("project 1") == 1 and ls.find_project("project 1") == 1
    calls = [(s[1].split("?")[0], s[2]) for s in Stub.seen]
    assert calls[0] == ("/api/token/refresh/", None)  # traded once, then reused
    assert calls[1:] == [("/api/projects/", "Bearer acc")] * 4  # two pages, twice
    with pytest.raises(LabelStudioError, match=r"rejected the personal access token \(HTTP 401"):
        LabelStudio(url=stub, token="x.y.z").find_project("p")


def test_the_server_launcher_explains_a_missing_venv_and_a_busy_port(tmp_path, monkeypatch,
                                                                       stub):
    settings = server.Settings.from_env(port=server.free_port(), data_dir=tmp_path)
    monkeypatch.setenv("RLFOUNDRY_LABEL_STUDIO_VENV", str(tmp_path / "no-venv"))
    with pytest.raises(FileNotFoundError, match=r"make labelstudio-setup"):
        server.start(settings)
    fake = tmp_path / "venv" / "bin" / "label-studio"
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/bin/sh\n")
    monkeypatch.setenv("RLFOUNDRY_LABEL_STUDIO_VENV", str(tmp_path / "venv"))
    busy = server.Settings.from_env(port=int(stub.rsplit(":", 1)[1]), data_dir=tmp_path)
    with pytest.raises(OSError, match=r"Port \d+ on 127.0.0.1 is busy"):
        server.start(busy)
