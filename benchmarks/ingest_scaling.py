"""Ingestion scaling: files/s and peak memory of the `audio_clips` asset as a batch grows.

Run (from the repository root):

    .venv/bin/python benchmarks/ingest_scaling.py [--sizes 1000,2500,5000,10000]

Options: `--repeats R` (default 2) runs each size R times, each in a fresh
process, and keeps the fastest wall time and the largest memory growth;
`--no-folder` skips the folder-mode run; `--instance sqlite` materializes on
a temporary on-disk (SQLite) Dagster instance, as `rlfoundry ingest` does with
its `$DAGSTER_HOME`, instead of the default in-memory ephemeral one (this adds
the cost of persisting every Dagster log event); `--profile N` also runs one manifest
of N clips under cProfile and prints the top functions; `--out PATH` (default
`benchmarks/results/ingest_scaling.json`); `--keep` keeps the generated media.
HF_HUB_OFFLINE=1 is set if unset. Takes about 3 minutes on 2 busy cores, ~45 s of it
generating the 10,000 clips (not measured).

What it does. The largest N short clips are generated once in a temporary
folder (0.5 s, 16 kHz mono; distinct noise per clip, so nothing is
deduplicated; every 20th clip is FLAC, the others WAV). Each N gets a JSONL
manifest naming the first N clips (no copies). Each N is then ingested in a
fresh Python subprocess exactly as a user's run does it:
`Warehouse.register_batch`, `add_dynamic_partitions("batches", ...)`, then
`dagster.materialize([audio_clips], partition_key=...)` on an ephemeral
instance with a fresh warehouse; the child checks that all N clips became rows.
One more run ingests a folder of 1000 clips (hard links to the same media, so
no copies) with sidecar `.txt` transcripts.

Measured in each subprocess: the wall time and CPU time of `materialize` only
(generation, imports and registration excluded), files/s; the RSS just before
`materialize` (baseline: interpreter, Dagster, DuckDB, PyAV... imported and the
batch registered); the peak RSS of the process (`ru_maxrss`, per process, hence
one process per N); and peak - baseline, the growth due to ingestion. The
load average is recorded too: wall times are only comparable on a quiet machine
(CPU time is less sensitive to other load).

What "flat" means. Ingestion streams every file (decoded block by block,
hashed 1 MiB at a time), so the only state that has to grow with N is a few
small Python objects per clip (its manifest entry and its row, held until the
partition's single Parquet write). Memory is FLAT when the least-squares slope
of (peak - baseline) against N is at most FLAT_KIB_PER_FILE (1 KiB per file,
i.e. under 10 MiB per 10,000 files). Above that, the slope is compared with the
size of one decoded clip (0.5 s x 16 kHz float32 = 31.25 KiB): well below a
quarter of it means per-clip metadata is held for the whole batch (memory grows
linearly with batch size, but no media is retained); a quarter or more means
decoded audio or file buffers are being kept (a leak).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_SIZES = (1000, 2500, 5000, 10000)
FOLDER_N = 1000
CLIP_SECONDS = 0.5
SAMPLE_RATE = 16000
FLAC_EVERY = 20  # every 20th clip is FLAC: 5 % in a second format
FLAT_KIB_PER_FILE = 1.0
DECODED_CLIP_KIB = CLIP_SECONDS * SAMPLE_RATE * 4 / 1024  # float32 mono, as load_audio returns
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "ingest_scaling.json"
PROJECT_CODE = r"/(labeling|assets|resources|pipelines|sql)/"  # pstats filter for our code


# --- measuring (runs in the child process) -------------------------------------------------


def _current_rss_mib() -> float:
    """Resident set size now, in MiB (Linux /proc; psutil elsewhere)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _peak_rss_mib() -> float:
    """Peak RSS of this process so far, in MiB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def _load() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def child(source: Path, n: int, mode: str, instance_kind: str, profile_out: Path | None,
          ) -> dict:
    """Ingest `source` (N clips) through the `audio_clips` asset; return the measurements."""
    import gc

    from dagster import DagsterInstance, materialize

    from assets.ingest import audio_clips
    from pipelines.partitions import BATCHES
    from resources.model_hub import ModelHub
    from resources.warehouse import Warehouse

    batch = f"bench-{mode}-{n}"
    with tempfile.TemporaryDirectory(prefix="rlf-bench-wh-") as wh_dir, \
            tempfile.TemporaryDirectory(prefix="rlf-bench-dagster-") as dagster_home, \
            (DagsterInstance.local_temp(dagster_home) if instance_kind == "sqlite"
             else DagsterInstance.ephemeral()) as instance:
        warehouse = Warehouse(root=wh_dir)
        warehouse.register_batch(batch, source)
        instance.add_dynamic_partitions(BATCHES, [batch])
        gc.collect()
        baseline, peak_before, load_before = _current_rss_mib(), _peak_rss_mib(), _load()

        def run():
            return materialize([audio_clips], partition_key=batch, instance=instance,
                               resources={"warehouse": warehouse, "model_hub": ModelHub()})

        profiler = None
        if profile_out is not None:
            import cProfile

            profiler = cProfile.Profile()
        start, cpu_start = time.perf_counter(), time.process_time()
        result = profiler.runcall(run) if profiler else run()
        seconds, cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
        peak, after = _peak_rss_mib(), _current_rss_mib()
        if profiler:
            profiler.dump_stats(profile_out)
        if not result.success:
            raise SystemExit(f"materialize failed for {batch}")
        (mat,) = [e.event_specific_data.materialization
                  for e in result.get_asset_materialization_events()]
        meta = {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
        formats = dict(warehouse.fetch(
            "SELECT format, count(*) FROM audio_clips WHERE batch = $b GROUP BY 1", {"b": batch}))
        texts = warehouse.fetch(
            "SELECT count(*) FROM audio_clips WHERE batch = $b AND text LIKE 'tone number %'",
            {"b": batch})[0][0]
        log_events = len(instance.all_logs(result.run_id))
    rows = sum(formats.values())
    if rows != n or meta["ingested"] != n or texts != n:
        raise SystemExit(f"{batch}: expected {n} rows with transcripts, got {rows} rows, "
                         f"{texts} transcripts (metadata {meta})")
    return {
        "n": n, "mode": mode, "instance": instance_kind, "seconds": seconds, "cpu_s": cpu_s,
        "files_per_s": n / seconds, "files_per_cpu_s": n / cpu_s if cpu_s else None,
        "baseline_rss_mib": baseline, "peak_rss_before_mib": peak_before,
        "peak_rss_mib": peak, "rss_after_mib": after, "growth_mib": peak - baseline,
        "ingested": meta["ingested"], "duplicates": meta["duplicates"],
        "quarantined": meta["quarantined"], "formats": formats,
        "dagster_log_events": log_events, "load_before": load_before, "load_after": _load(),
    }


# --- generating and driving (parent process) -----------------------------------------------


def clip_name(i: int) -> str:
    return f"clip{i:05d}.{'flac' if i % FLAC_EVERY == FLAC_EVERY - 1 else 'wav'}"


def generate(media: Path, count: int) -> None:
    from labeling.testing import write_tone

    media.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        write_tone(media / clip_name(i), seconds=CLIP_SECONDS, sample_rate=SAMPLE_RATE, seed=i)


def write_manifests(media: Path, sizes: set[int]) -> dict[int, Path]:
    """One manifest per N, beside the media, naming the first N clips by relative path."""
    from labeling.testing import write_manifest

    return {n: write_manifest(media / f"manifest_{n}.jsonl", (
        {"audio_filepath": clip_name(i), "text": f"tone number {i}"} for i in range(n)))
        for n in sorted(sizes)}


def make_folder(media: Path, folder: Path, n: int) -> Path:
    """A folder batch of `n` clips, hard links (real files inside the folder) + sidecar .txt."""
    folder.mkdir(parents=True)
    for i in range(n):
        name = clip_name(i)
        try:
            os.link(media / name, folder / name)
        except OSError:
            shutil.copyfile(media / name, folder / name)
        (folder / name).with_suffix(".txt").write_text(f"tone number {i}\n")
    return folder


def run_child(source: Path, n: int, mode: str, work: Path, instance: str,
              profile_out: Path | None = None) -> dict:
    """One measured ingestion in a fresh interpreter; its output goes to a log in `work`."""
    tag = f"{mode}_{n}_{time.monotonic_ns()}"
    out, log = work / f"result_{tag}.json", work / f"log_{tag}.txt"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(source), "--n", str(n),
           "--mode", mode, "--instance", instance, "--child-out", str(out)]
    if profile_out is not None:
        cmd += ["--profile-out", str(profile_out)]
    with log.open("wb") as fh:
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-4000:]
        raise SystemExit(f"child for {mode} N={n} failed (rc {proc.returncode}):\n{tail}")
    return json.loads(out.read_text())


def measure(source: Path, n: int, mode: str, work: Path, instance: str, repeats: int) -> dict:
    """Best wall time and largest memory growth over `repeats` fresh processes."""
    runs = [run_child(source, n, mode, work, instance) for _ in range(repeats)]
    fastest = min(runs, key=lambda r: r["seconds"])
    hungriest = max(runs, key=lambda r: r["growth_mib"])
    return {
        **fastest,
        **{k: hungriest[k] for k in ("baseline_rss_mib", "peak_rss_before_mib", "peak_rss_mib",
                                     "rss_after_mib", "growth_mib")},
        "cpu_s": min(r["cpu_s"] for r in runs),
        "repeats": runs,
    }


# --- reporting -----------------------------------------------------------------------------


def slope_kib_per_file(runs: list[dict]) -> float | None:
    """Least-squares slope of (peak - baseline) against N, in KiB per file."""
    xs = [r["n"] for r in runs]
    ys = [r["growth_mib"] * 1024 for r in runs]
    if len(set(xs)) < 2:
        return None
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


def verdict(runs: list[dict]) -> dict:
    slope = slope_kib_per_file(runs)
    if slope is None:
        kind = "unknown (needs two sizes)"
    elif slope <= FLAT_KIB_PER_FILE:
        kind = "flat"
    elif slope < DECODED_CLIP_KIB / 4:
        kind = "linear in batch size (per-clip metadata held for the batch; no media retained)"
    else:
        kind = "retains media (a leak: decoded audio or file buffers kept per clip)"
    small, large = runs[0], runs[-1]
    return {
        "flat": kind == "flat", "kind": kind, "slope_kib_per_file": slope,
        "flat_max_kib_per_file": FLAT_KIB_PER_FILE, "decoded_clip_kib": DECODED_CLIP_KIB,
        "from_n": small["n"], "to_n": large["n"],
        "extra_growth_mib": large["growth_mib"] - small["growth_mib"],
        "projected_growth_mib_per_100k_files": slope * 100_000 / 1024 if slope else None,
    }


def table(runs: list[dict]) -> list[str]:
    head = (f"{'mode':<9}{'N':>7}{'seconds':>9}{'files/s':>9}{'cpu s':>8}{'files/cpu-s':>12}"
            f"{'baseline MiB':>14}{'peak MiB':>10}{'peak-base':>11}{'load':>6}")
    lines = [head, "-" * len(head)]
    for r in runs:
        load = r["load_before"]
        lines.append(
            f"{r['mode']:<9}{r['n']:>7}{r['seconds']:>9.2f}{r['files_per_s']:>9.0f}"
            f"{r['cpu_s']:>8.2f}{r['n'] / r['cpu_s']:>12.0f}{r['baseline_rss_mib']:>14.1f}"
            f"{r['peak_rss_mib']:>10.1f}{r['growth_mib']:>11.1f}"
            f"{load if load is not None else float('nan'):>6.1f}")
    return lines


def profile_report(stats_path: Path, top: int = 20) -> str:
    import io
    import pstats

    buf = io.StringIO()
    stats = pstats.Stats(str(stats_path), stream=buf)
    buf.write("== by own time (all code) ==\n")
    stats.sort_stats("tottime").print_stats(top)
    buf.write("== by cumulative time (project code only) ==\n")
    stats.sort_stats("cumulative").print_stats(PROJECT_CODE, top)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)),
                        help="comma-separated batch sizes (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=2,
                        help="fresh processes per size (default: %(default)s)")
    parser.add_argument("--no-folder", action="store_true", help="skip the folder-mode run")
    parser.add_argument("--profile", type=int, metavar="N",
                        help="also profile one manifest run of N clips with cProfile")
    parser.add_argument("--instance", choices=("ephemeral", "sqlite"), default="ephemeral",
                        help="Dagster instance to materialize on (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    parser.add_argument("--keep", action="store_true", help="keep the generated media")
    # Internal: one measured ingestion, in a fresh process.
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="manifest", help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child is not None:
        result = child(args.child, args.n, args.mode, args.instance, args.profile_out)
        args.child_out.write_text(json.dumps(result))
        return 0

    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    work = Path(tempfile.mkdtemp(prefix="rlf-ingest-bench-"))
    try:
        media = work / "media"
        manifest_sizes = set(sizes) | ({args.profile} if args.profile else set())
        largest = max(manifest_sizes | (set() if args.no_folder else {FOLDER_N}))
        start = time.perf_counter()
        generate(media, largest)
        manifests = write_manifests(media, manifest_sizes)
        print(f"Dagster instance: {args.instance}")
        print(f"generated {largest} clips of {CLIP_SECONDS} s in "
              f"{time.perf_counter() - start:.1f} s (not measured) under {work}", flush=True)

        print(*table([])[:2], sep="\n", flush=True)
        runs, folder_runs = [], []
        for n in sizes:
            runs.append(measure(manifests[n], n, "manifest", work, args.instance, args.repeats))
            print(table(runs[-1:])[-1], flush=True)
        if not args.no_folder:
            folder = make_folder(media, work / "folder", FOLDER_N)
            folder_runs.append(measure(folder, FOLDER_N, "folder", work, args.instance,
                                       args.repeats))
            print(table(folder_runs[-1:])[-1], flush=True)

        v = verdict(runs)
        if v["slope_kib_per_file"] is not None:
            print(f"\npeak - baseline: {v['extra_growth_mib']:+.1f} MiB from N={v['from_n']} to "
                  f"N={v['to_n']}; slope {v['slope_kib_per_file']:.2f} KiB/file (flat <= "
                  f"{FLAT_KIB_PER_FILE:g}; one decoded clip = {DECODED_CLIP_KIB:.2f} KiB; "
                  f"~{v['projected_growth_mib_per_100k_files']:.0f} MiB per 100k files)."
                  f"\nmemory: {'FLAT' if v['flat'] else 'NOT flat'}: {v['kind']}.")

        profile = None
        if args.profile:
            stats_path = work / "profile.pstats"
            prof_run = run_child(manifests[args.profile], args.profile, "profile", work,
                                 args.instance, profile_out=stats_path)
            profile = {"run": prof_run, "report": profile_report(stats_path)}
            print(f"\ncProfile of N={args.profile}: {prof_run['seconds']:.1f} s under the "
                  "profiler (its per-call overhead inflates small Python calls):\n"
                  + profile["report"])

        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({
            "benchmark": "ingest_scaling",
            "command": " ".join([".venv/bin/python", "benchmarks/ingest_scaling.py",
                                 *(argv if argv is not None else sys.argv[1:])]),
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "clip": {"seconds": CLIP_SECONDS, "sample_rate": SAMPLE_RATE, "channels": 1,
                     "flac_share": 1 / FLAC_EVERY},
            "machine": {"python": platform.python_version(), "platform": platform.platform(),
                        "cpus": os.cpu_count()},
            "instance": args.instance, "runs": runs, "folder_runs": folder_runs, "memory": v,
            "profile": profile,
        }, indent=2) + "\n")
        shown = args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out
        print(f"\nwrote {shown}")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
