"""`make demo-questions`' summary helper: the audio scenes' answers by their truth file."""

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRUTH = ROOT / "data" / "sample" / "audio_qa" / "truth.jsonl"
spec = importlib.util.spec_from_file_location("questions_demo",
                                              ROOT / "scripts" / "questions_demo.py")
demo = importlib.util.module_from_spec(spec)
spec.loader.exec_module(demo)


def test_the_truth_file_answers_each_kind_and_mismatches_are_named():
    scene_00 = json.loads(TRUTH.read_text().splitlines()[0])
    want = demo.truth_answers(scene_00)
    # by hand (data/sample/audio_qa/README.md): speech 5.59 s, music 3.65 s, noise 2.40 s;
    # speech starts first (0.98 s), noise last (10.95 s); one sound at a time
    assert want[("longest", None)] == "speech" and want[("shortest", None)] == "noise"
    assert want[("starts_first", None)] == "speech" and want[("starts_last", None)] == "noise"
    assert want[("duration", "music")] == 3.65 and want[("max_concurrent", None)] == 1.0
    names = {"c0": "scene_00.ogg"}
    rows = [{"clip_id": "c0", "form": "open", "kind": "longest", "subject": None,
             "value": None, "answer": "speech"},
            {"clip_id": "c0", "form": "open", "kind": "duration", "subject": "music",
             "value": 3.65, "answer": "3.6"},
            {"clip_id": "c0", "form": "open", "kind": "duration", "subject": "noise",
             "value": 2.9, "answer": "2.9"},
            {"clip_id": "c0", "form": "choice", "kind": "longest", "subject": None,
             "value": None, "answer": "B"}]
    same, checked, wrong = demo.truth_check(rows, names, TRUTH)
    assert (same, checked) == (2, 3) and wrong == ["scene_00.ogg duration noise: 2.9 (truth 2.4)"]
