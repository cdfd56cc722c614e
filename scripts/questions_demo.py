"""The question chains' demo helpers (`make demo-questions`): tiny random models, and a summary.

The audio chain needs no random model offline (silero-vad's real weights install from PyPI;
the questions are templates whose answers are computed). The video chain's VLM and text LLM
have no weights that install offline (see ../shared/NOTES.md), so the demo builds tiny
random ones here from configs, and says so::

    .venv/bin/python scripts/questions_demo.py models "$RLFOUNDRY_HOME/models/tiny-qa"
    .venv/bin/python scripts/questions_demo.py summary --audio-batch sample-audio-qa \\
        --video-batch sample-video-qa --truth data/sample/audio_qa/truth.jsonl

`models DEST` writes `DEST/vlm` (LLaVA) and `DEST/text_llm` (Qwen2), random weights, once;
point the model hub at them with `$RLFOUNDRY_VLM_MODEL` and `$RLFOUNDRY_TEXT_LLM_MODEL`.

`summary` prints, for the two batches already run through `rlfoundry job audio_qa_labeling`
and `rlfoundry job video_qa_labeling`, per chain: counts, what was quarantined and why, a
few questions with their answers, which models were real and which random, where the
datasets are, and for the audio scenes how many answers equal the ones the scenes' truth
(`truth.jsonl`, counted by their generator) gives.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import textwrap
from collections import Counter
from pathlib import Path

ROLES = ("vlm", "text_llm")
RULE = "=" * 78


def build_models(dest: Path) -> dict[str, Path]:
    """Tiny random VLM and text LLM under `dest`, built once each."""
    from models.tiny import BUILDERS

    paths = {}
    for role in ROLES:
        folder = dest / role
        if not (folder / "config.json").is_file():
            staging = dest / f".{role}.tmp"
            shutil.rmtree(staging, ignore_errors=True)
            BUILDERS[role](staging)
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(staging, folder)
        paths[role] = folder
    return paths


# --------------------------------------------------------------------------- audio


def truth_answers(truth: dict) -> dict[tuple[str, str | None], str | float]:
    """(kind, subject) -> the answer the scene's truth gives (its generator's facts)."""
    heard = {k: f for k, f in truth["classes"].items() if f["count"]}
    out: dict = {("duration", k): f["total_s"] for k, f in heard.items()}
    for kind, field, pick in [("longest", "total_s", max), ("shortest", "total_s", min),
                              ("starts_first", "first_start_s", min),
                              ("starts_last", "first_start_s", max)]:
        if heard:
            out[(kind, None)] = pick(heard, key=lambda k, f=field: heard[k][f])
    out[("max_concurrent", None)] = float(truth["max_concurrent"])
    return out


def truth_check(questions: list[dict], names: dict[str, str], truth_file: Path
                ) -> tuple[int, int, list[str]]:
    """(answers equal to the truth's, answers checked, mismatches) over the open forms."""
    truth = {t["audio_filepath"]: truth_answers(t)
             for t in map(json.loads, truth_file.read_text(encoding="utf-8").splitlines())}
    same = checked = 0
    wrong = []
    for q in (q for q in questions if q["form"] == "open"):
        want = truth.get(names[q["clip_id"]], {}).get((q["kind"], q["subject"]))
        if want is None:
            continue
        got = q["value"] if q["value"] is not None else q["answer"]
        ok = abs(got - want) < 0.011 if isinstance(want, float) else got == want
        checked += 1
        same += ok
        if not ok:
            wrong.append(f"{names[q['clip_id']]} {q['kind']} {q['subject'] or ''}: "
                         f"{got} (truth {want})")
    return same, checked, wrong


def audio_summary(warehouse, batch: str, truth: Path | None) -> bool:
    clips = warehouse.fetch_dicts("SELECT clip_id, source_path, duration_s FROM audio_clips "
                                  "WHERE batch = $b", {"b": batch})
    names = {c["clip_id"]: Path(c["source_path"]).name for c in clips}
    regions = warehouse.fetch_dicts("SELECT * FROM sound_regions WHERE batch = $b", {"b": batch})
    questions = warehouse.fetch_dicts(
        "SELECT * FROM audio_questions WHERE batch = $b ORDER BY clip_id, kind, form",
        {"b": batch})
    out = warehouse.report_dir("audio_qa_dataset", batch)
    examples = _jsonl(out / "audio_qa.jsonl")
    print(RULE)
    print(f" AUDIO QUESTIONS (job audio_qa_labeling, batch {batch})")
    print(" Real offline: silero-vad (its own weights, PyPI `silero-vad`) marks speech; the")
    print(" question templates, ambiguity guards and computed answers are plain code. No")
    print(" random model is used. No audio tagger installs offline: music and noise come")
    print(" from given regions: here the manifest's, the synthetic scenes' true regions")
    print(" (people's come first after `audio_qa_qc_pull`).")
    print(RULE)
    seconds = sum(c["duration_s"] for c in clips)
    print(f"     clips: {len(clips)} ({seconds:.1f} s of audio, "
          f"{min(c['duration_s'] for c in clips):.1f}-{max(c['duration_s'] for c in clips):.1f}"
          " s each)" if clips else "     clips: 0")
    print(f"   regions: {dict(Counter(r['source'] for r in regions))} "
          f"(questions use: {dict(Counter(r['source'] for r in regions if r['used']))})")
    iou = _speech_iou(regions)
    if iou:
        print(f" silero-vad: speech IoU with the manifest's speech {min(iou):.2f}-{max(iou):.2f}"
              f" (mean {sum(iou) / len(iou):.2f}) over {len(iou)} clips")
    print(f" questions: {len(questions)} rows ({_counts(questions, 'form')}); kinds "
          f"{_counts(questions, 'kind')}")
    _quarantine(warehouse, batch, ("sound_regions", "audio_questions"))
    if truth is not None and truth.is_file():
        same, checked, wrong = truth_check(questions, names, truth)
        print(f"     truth: {same}/{checked} answers equal the scenes' truth ({truth})")
        for line in wrong[:5]:
            print(f"            differs: {line}")
    print(f"   dataset: {len(examples)} rows -> {out / 'audio_qa_dataset'}")
    print(f"     jsonl: {out / 'audio_qa.jsonl'}")
    _examples(examples, "audio", lambda r: f"[{r['kind']}, {r['problem_type']}]")
    return bool(examples)


def _speech_iou(regions: list[dict]) -> list[float]:
    from labeling.audio_qa.chain import speech_agreement

    return list(speech_agreement(regions).values())


# --------------------------------------------------------------------------- video


def video_summary(warehouse, batch: str) -> bool:
    segments = warehouse.fetch_dicts("SELECT * FROM video_segments WHERE batch = $b",
                                     {"b": batch})
    descriptions = warehouse.fetch_dicts("SELECT * FROM video_descriptions WHERE batch = $b",
                                         {"b": batch})
    questions = warehouse.fetch_dicts("SELECT * FROM video_questions WHERE batch = $b",
                                      {"b": batch})
    out = warehouse.report_dir("video_qa_dataset", batch)
    examples = _jsonl(out / "video_qa.jsonl")
    described_by_model = [d for d in descriptions if d["source"].startswith("model:")]
    weights = Counter(q["weights"] for q in questions)
    print(RULE)
    print(f" VIDEO QUESTIONS (job video_qa_labeling, batch {batch})")
    print(" Real offline: PyAV decoding, the exact 70 % cut, the question checks, the template")
    print(" questions. RANDOM TINY WEIGHTS: the VLM and the text LLM are tiny random builds")
    print(" (no weights install offline): the LLM's questions are garbage and refused")
    print(" (quarantined with its text), its blind-control picks are chance, and a VLM")
    print(" description would be meaningless. Real models: RLFOUNDRY_VLM_MODEL /")
    print(" RLFOUNDRY_TEXT_LLM_MODEL = hub ids (cached) or folders.")
    print(RULE)
    if segments:
        s = segments[0]
        print(f"  segments: {len(segments)} videos, {s['fps']:g} fps, short side "
              f"{s['short_side']}, cut at {s['cut']:.0%}: "
              + ", ".join(f"{Path(x['source_path']).name} {x['context_frames']}+"
                          f"{x['truth_frames']} frames" for x in segments))
    print(f" descriptions: {_counts(descriptions, 'source')}"
          + (f" ({len(described_by_model)} by the random VLM)" if described_by_model
             else " (the VLM was not loaded: every part was described in the manifest)"))
    print(f" questions: {len({q['group_id'] for q in questions})} ({len(questions)} rows: "
          f"{_counts(questions, 'form')}); sources {_counts(questions, 'question_source')};"
          f" weights {dict(weights)}")
    blind = [q for q in questions if q["form"] == "choice" and q["answerable_blind"] is not None]
    print(f"     blind: {sum(bool(q['answerable_blind']) for q in blind)}/{len(blind)} "
          "answered right without the video (left out of the dataset)")
    _quarantine(warehouse, batch, ("video_segments", "video_descriptions", "video_questions",
                                   "video_qa_dataset"))
    qc = Counter(q["qc"] for q in warehouse.fetch_dicts(
        "SELECT coalesce(v.status, q.qc) AS qc FROM video_questions q LEFT JOIN "
        "video_question_verdicts v USING (batch, group_id) WHERE q.batch = $b", {"b": batch}))
    print(f"  human qc: {dict(qc)}; until someone answers in Label Studio (make labelstudio;"
          f" rlfoundry job video_qc_push / video_qc_pull --batch {batch}) every question is "
          "kept; after, only accepted ones")
    print(f"   dataset: {len(examples)} rows -> {out / 'video_qa_dataset'}")
    print(f"     jsonl: {out / 'video_qa.jsonl'}")
    _examples(examples, "video", lambda r: f"[{r['form']}, {r['question_source']}, "
                                           f"{len(r['images'])} frames]", count=2)
    return bool(examples)


# --------------------------------------------------------------------------- shared


def _jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _counts(rows: list[dict], key: str) -> str:
    return ", ".join(f"{k} {n}" for k, n in sorted(Counter(r[key] for r in rows).items()))


def _quarantine(warehouse, batch: str, assets: tuple[str, ...]) -> None:
    refused = warehouse.fetch(
        "SELECT asset, reason, count(*) FROM quarantine WHERE batch = $b AND list_contains("
        "$assets, asset) GROUP BY ALL ORDER BY 1, 3 DESC", {"b": batch, "assets": list(assets)})
    for asset, reason, n in refused:
        print(f"quarantine: {asset} {reason} x{n}")


def _examples(rows: list[dict], media: str, label, count: int = 3) -> None:
    """A few rows of different kinds and problem types: the prompt as the model sees it (but
    its last line, the format, shown once; long options cut), and the answer rewards check."""
    picked: list[dict] = []
    for strict in (True, False):
        for r in rows:
            kinds = {p.get("kind") for p in picked}
            types = {p["problem_type"] for p in picked}
            fresh = r["problem_type"] not in types and (r.get("kind") not in kinds or not strict)
            if len(picked) < count and r not in picked and fresh:
                picked.append(r)
    picked += [r for r in rows if r not in picked][: count - len(picked)]
    for r in picked:
        *asked, _ = r["prompt_text"].splitlines()
        print(f"   example: {Path(r[media]).name} {label(r)}")
        for line in asked:
            print(textwrap.fill(_cut(line, 110), 76, initial_indent="      | ",
                                subsequent_indent="      | "))
        answer = r["answer"] if r["answer"] == r["answer_text"] else \
            f"{r['answer']} ({_cut(r['answer_text'], 60)})"
        print(f"      -> answer: {answer}")
    if rows:
        print(f"   every prompt ends: {rows[0]['prompt_text'].splitlines()[-1]}")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def summary(audio_batch: str, video_batch: str, truth: Path | None) -> int:
    from resources.warehouse import Warehouse

    warehouse = Warehouse()
    ok = audio_summary(warehouse, audio_batch, truth)
    ok = video_summary(warehouse, video_batch) and ok
    print(RULE)
    print(" Rewards for both (training/rewards/answers.py): choice_correct, numeric_correct,")
    print(" open_answer_match, answer_correct, and answer_format (<think>…</think><answer>…")
    print(" </answer>, what every prompt asks for).")
    print(RULE)
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("models", help="build the tiny random VLM and text LLM once")
    build.add_argument("dest", type=Path)
    report = sub.add_parser("summary", help="counts, examples and paths of both chains")
    report.add_argument("--audio-batch", required=True)
    report.add_argument("--video-batch", required=True)
    report.add_argument("--truth", type=Path, help="the audio scenes' truth.jsonl")
    args = parser.parse_args(argv)
    if args.command == "models":
        for role, path in build_models(args.dest).items():
            print(f"tiny random {role}: {path}")
        return 0
    return summary(args.audio_batch, args.video_batch, args.truth)


if __name__ == "__main__":
    sys.exit(main())
