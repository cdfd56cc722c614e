"""Label Studio (Community edition) over plain HTTP: projects, media storage, tasks, exports.

The human-QC assets push tasks with the model's output as predictions and pull
the annotations back through this resource; it talks to a running server
(``make labelstudio`` starts one on 127.0.0.1:8080) with ``requests``, not the
Label Studio SDK, whose pins clash with the project's (see NOTES).

Every failure is one line naming the URL and what to do: a server that is
down, a wrong token, or a request Label Studio refused (with its reason).

Example (with a server running)::

    ls = LabelStudio()  # LABEL_STUDIO_URL, LABEL_STUDIO_API_KEY / LABEL_STUDIO_USER_TOKEN
    project = ls.ensure_project("Which transcript is better?", PAIRWISE_CONFIG_XML)
    ls.import_tasks(project, [{"data": {...}, "predictions": [...]}])
    tasks = ls.export_tasks(project)  # [{id, data, annotations, predictions}, ...]
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import requests
from dagster import ConfigurableResource
from pydantic import Field, PrivateAttr

DEFAULT_URL = "http://127.0.0.1:8080"
#: The legacy API token ``make labelstudio`` gives its admin user unless
#: LABEL_STUDIO_USER_TOKEN says otherwise (a local, loopback-only server).
DEFAULT_TOKEN = "rlfoundry-local-token"
DEFAULT_DOCUMENT_ROOT = os.path.abspath(os.sep)  # Label Studio's own default
_PAGE = 100


class LabelStudioError(RuntimeError):
    """A Label Studio call failed; the message is one line saying what to do."""


class LabelStudio(ConfigurableResource):
    """A Label Studio server reached over HTTP, authenticated by an API token."""

    url: str = Field(
        default="",
        description="Base URL of the server; empty = $LABEL_STUDIO_URL, else "
        f"{DEFAULT_URL} (where `make labelstudio` serves). Read when used.",
    )
    token: str = Field(
        default="",
        description="API token: a personal access token (Account & Settings, sent as a JWT "
        "Bearer) or a legacy token. Empty = $LABEL_STUDIO_API_KEY, else "
        "$LABEL_STUDIO_USER_TOKEN, else the token `make labelstudio` sets up.",
    )
    timeout_s: float = Field(
        default=60.0, description="Seconds to wait for one HTTP response (exports can be slow)."
    )
    document_root: str = Field(
        default="",
        description="The server's LOCAL_FILES_DOCUMENT_ROOT: media under it is linked as "
        "/data/local-files/?d=<path under it> (served from a local-files storage); empty = "
        f"$LOCAL_FILES_DOCUMENT_ROOT, else {DEFAULT_DOCUMENT_ROOT}.",
    )

    _session: requests.Session | None = PrivateAttr(default=None)
    _access: str | None = PrivateAttr(default=None)  # from a personal access token

    # ------------------------------------------------------------------ settings

    @property
    def base_url(self) -> str:
        return (self.url or os.environ.get("LABEL_STUDIO_URL") or DEFAULT_URL).rstrip("/")

    @property
    def api_token(self) -> str:
        return (self.token or os.environ.get("LABEL_STUDIO_API_KEY")
                or os.environ.get("LABEL_STUDIO_USER_TOKEN") or DEFAULT_TOKEN)

    @property
    def root(self) -> Path:
        return Path(self.document_root or os.environ.get("LOCAL_FILES_DOCUMENT_ROOT")
                    or DEFAULT_DOCUMENT_ROOT).absolute()

    # ------------------------------------------------------------------ HTTP

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One API call; the decoded JSON (None for an empty body) or a one-line error."""
        response = self._send(method, path, self._auth_header(), **kwargs)
        if response.status_code == 401 and self._access:  # the short-lived access token expired
            self._access = None
            response = self._send(method, path, self._auth_header(), **kwargs)
        if response.status_code in (401, 403):
            raise LabelStudioError(
                f"Label Studio at {self.base_url} rejected the API token "
                f"(HTTP {response.status_code} on {method} {path}): set LABEL_STUDIO_API_KEY "
                "to a personal access token or LABEL_STUDIO_USER_TOKEN to a legacy token "
                "(Account & Settings in Label Studio).")
        if response.status_code >= 400:
            raise LabelStudioError(
                f"Label Studio at {self.base_url} refused {method} {path} "
                f"(HTTP {response.status_code}): {_reason(response)}")
        return response.json() if response.content else None

    def _send(self, method: str, path: str, headers: dict, **kwargs: Any) -> requests.Response:
        if self._session is None:
            self._session = requests.Session()
        try:
            return self._session.request(method, f"{self.base_url}{path}", headers=headers,
                                         timeout=self.timeout_s, **kwargs)
        except requests.ConnectionError as exc:
            raise LabelStudioError(
                f"Label Studio is not reachable at {self.base_url} ({_short(exc)}): start it "
                "with `make labelstudio`, or set LABEL_STUDIO_URL to where it runs.") from None
        except requests.Timeout:
            raise LabelStudioError(
                f"Label Studio at {self.base_url} did not answer {method} {path} within "
                f"{self.timeout_s:g} s: check the server, or raise the resource's timeout_s."
            ) from None

    def _auth_header(self) -> dict[str, str]:
        token = self.api_token
        if token.count(".") != 2:  # a legacy token
            return {"Authorization": f"Token {token}"}
        if self._access is None:  # a personal access token is a JWT refresh token: trade it
            response = self._send("POST", "/api/token/refresh/", {}, json={"refresh": token})
            if response.status_code != 200:
                raise LabelStudioError(
                    f"Label Studio at {self.base_url} rejected the personal access token "
                    f"(HTTP {response.status_code}): create a new one in Account & Settings "
                    "and set LABEL_STUDIO_API_KEY.")
            self._access = response.json()["access"]
        return {"Authorization": f"Bearer {self._access}"}

    def _paged(self, path: str, params: dict | None = None) -> list[dict]:
        """Every item of a list endpoint, whether it pages (``results``) or not (a list)."""
        items, page = [], 1
        while True:
            body = self.request("GET", path, params={**(params or {}), "page": page,
                                                     "page_size": _PAGE})
            if isinstance(body, list):
                return body
            items += body.get("results", [])
            if not body.get("next"):
                return items
            page += 1

    # ------------------------------------------------------------------ projects and media

    def find_project(self, title: str) -> int | None:
        """The id of the project titled exactly `title`, or None."""
        for project in self._paged("/api/projects/", {"title": title}):
            if project.get("title") == title:
                return int(project["id"])
        return None

    def ensure_project(self, title: str, label_config: str, description: str = "") -> int:
        """The id of the project titled `title`, created with `label_config` if missing."""
        found = self.find_project(title)
        if found is not None:
            return found
        body = self.request("POST", "/api/projects/", json={
            "title": title, "label_config": label_config, "description": description})
        return int(body["id"])

    def project_url(self, project_id: int) -> str:
        return f"{self.base_url}/projects/{project_id}/data"

    def media_url(self, path: str | Path) -> str | None:
        """The URL Label Studio serves a local file at, or None if it is outside the root.

        >>> ls = LabelStudio(document_root="/srv/media")
        >>> ls.media_url("/srv/media/clips/a.wav"), ls.media_url("/home/a.wav")
        ('/data/local-files/?d=clips/a.wav', None)
        """
        try:
            rel = Path(path).absolute().relative_to(self.root)
        except ValueError:
            return None
        return f"/data/local-files/?d={rel.as_posix()}"

    def ensure_local_storage(self, project_id: int, directory: str | Path) -> int:
        """A local-files storage of the project covering `directory` (created if missing).

        Label Studio serves ``/data/local-files/?d=...`` only for files inside a
        storage of a project the user can see; the directory must lie strictly
        inside the server's LOCAL_FILES_DOCUMENT_ROOT.
        """
        directory = Path(directory).absolute()
        for storage in self.request("GET", "/api/storages/localfiles/",
                                    params={"project": project_id}) or []:
            path = Path(storage.get("path") or "/nonexistent")
            if directory == path or path in directory.parents:
                return int(storage["id"])
        body = self.request("POST", "/api/storages/localfiles/", json={
            "project": project_id, "path": str(directory), "title": f"media {directory}",
            "description": "Serves the media of rlfoundry's tasks; not for syncing.",
            "use_blob_urls": False, "regex_filter": "^$"})  # a sync would import nothing
        return int(body["id"])

    # ------------------------------------------------------------------ tasks

    def import_tasks(self, project_id: int, tasks: list[dict]) -> list[int]:
        """Import tasks (each ``{data, predictions?}``); the new task ids, in order."""
        if not tasks:
            return []
        body = self.request("POST", f"/api/projects/{project_id}/import",
                            params={"return_task_ids": "true"}, json=tasks)
        return [int(i) for i in body.get("task_ids") or []]

    def export_tasks(self, project_id: int) -> list[dict]:
        """Every task of the project with its annotations and predictions (JSON export)."""
        return self.request("GET", f"/api/projects/{project_id}/export",
                            params={"exportType": "JSON", "download_all_tasks": "true"})

    def update_task(self, task_id: int, **fields: Any) -> dict:
        """Change fields of one task (e.g. ``overlap=2``: two annotators before it is done)."""
        return self.request("PATCH", f"/api/tasks/{task_id}/", json=fields)

    def create_annotation(self, task_id: int, result: list[dict], **fields: Any) -> dict:
        """Submit an annotation as an annotator would (``completed_by`` = a user id)."""
        return self.request("POST", f"/api/tasks/{task_id}/annotations/",
                            json={"result": result, **fields})


def _reason(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return _oneline(response.text) or response.reason
    if isinstance(body, dict):
        detail = body.get("validation_errors") or body.get("detail") or body
        return _oneline(str(detail))
    return _oneline(str(body))


def _short(exc: Exception) -> str:
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "timed out",
                   "No route to host"):
        if marker in text:
            return marker.lower()
    return _oneline(text)


def _oneline(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
