"""Tests for training.eval.metrics: normalisation, WER/CER counts, grouped reports, rendering."""

from __future__ import annotations

import json
import math
import struct
from fractions import Fraction

import jiwer
import pytest

from training.eval.metrics import ErrorCounts, corpus_scores, error_counts, normalize
from training.eval.report import (
    UNKNOWN,
    EvalReport,
    format_table,
    grouped_scores,
    plot_report,
    to_markdown,
)

# --------------------------------------------------------------------------- normalize


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello, World!", "hello world"),  # punctuation and case
        ("WHAT?! No... really.", "what no really"),
        ('"Quoted" (laughs) [noise] text', "quoted text"),  # brackets/parentheses dropped
        ("Twenty-five dollars", "$25"),  # spelled-out number + currency
        ("$25", "$25"),
        ("twenty five", "25"),
        ("one hundred and one", "101"),
        ("ten percent", "10%"),
        ("1,000", "1000"),
        ("colour", "color"),  # British -> American
        ("The centre's grey theatre", "the center is gray theater"),
        ("It's", "it is"),  # contractions
        ("I can't, won't", "i can not will not"),
        ("gonna", "going to"),
        ("Mr. Smith", "mister smith"),
        ("Um, uh, hmm yes", "yes"),  # fillers
        ("  extra   spaces\t\n here  ", "extra spaces here"),
        ("Café naïve", "cafe naive"),
        ("", ""),
        ("   ", ""),
        ("Um.", ""),
    ],
)
def test_normalize(text: str, expected: str) -> None:
    assert normalize(text) == expected


def test_normalize_numbers_and_spelling_are_equivalent_forms() -> None:
    assert normalize("Twenty-five dollars") == normalize("$25")
    assert normalize("twenty five") == normalize("25")
    assert normalize("colour") == normalize("color")
    assert normalize("one") == normalize("1") == "one"  # Whisper writes a lone 1 as "one"


def test_normalize_folds_typographic_apostrophes() -> None:
    # Whisper's rules only know ASCII "'": rlfoundry folds ’ ‘ ʼ first.
    assert normalize("It’s") == normalize("It's") == "it is"
    assert normalize("can’t") == "can not"
    assert normalize("Iʼm") == "i am"


def test_normalize_strips_trailing_space_whisper_leaves() -> None:
    from whisper_normalizer.english import EnglishTextNormalizer

    assert EnglishTextNormalizer()("abc%") == "abc "  # the raw normaliser's quirk
    assert normalize("abc%") == "abc"


def test_normalize_documented_quirks() -> None:
    assert normalize("one two three") == "123"
    # spelled digit runs merge into one token, spaced digits do not
    assert normalize("one two") == "12" and normalize("1 2") == "one 2"
    assert error_counts("one two", "1 2").errors == 2
    assert normalize("a second ago") == "a 2nd ago"
    assert normalize("the root cause") == "the root because"


def test_normalize_rejects_non_str() -> None:
    with pytest.raises(TypeError):
        normalize(None)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- error counts vs jiwer

CASES = [
    ("the cat sat on the mat", "the cat sat on a mat"),  # substitution
    ("the cat sat", "the cat sat down here"),  # insertions only
    ("the cat sat on the mat", "the mat"),  # deletions only
    ("hello world", ""),  # empty hypothesis
    ("Twenty-five dollars, please!", "$25 please"),  # equal after normalisation
    ("I can't believe it's the colour red", "i cannot believe its the color read"),
    ("one two three four", "1 2 3 4"),
    ("a b c d e f", "x b c y e f z"),
    ("good", "good"),
]


@pytest.mark.parametrize(("ref", "hyp"), CASES)
def test_error_counts_match_jiwer(ref: str, hyp: str) -> None:
    r, h = normalize(ref), normalize(hyp)
    assert r  # jiwer comparisons below need a non-empty reference
    words = jiwer.process_words(r, h)
    chars = jiwer.process_characters(r, h)
    c = error_counts(ref, hyp)
    assert (c.substitutions, c.deletions, c.insertions, c.hits) == (
        words.substitutions,
        words.deletions,
        words.insertions,
        words.hits,
    )
    assert c.ref_words == len(r.split())
    assert c.ref_chars == len(r)
    assert c.char_errors == chars.substitutions + chars.deletions + chars.insertions
    assert c.wer == pytest.approx(jiwer.wer(r, h))
    assert c.cer == pytest.approx(jiwer.cer(r, h))
    # already-normalised strings give the same counts
    assert error_counts(r, h, normalized=True) == c


def test_error_counts_hand_examples() -> None:
    ins = error_counts("the cat sat", "the cat sat down here")
    assert (ins.substitutions, ins.deletions, ins.insertions, ins.hits) == (0, 0, 2, 3)
    assert ins.wer == pytest.approx(2 / 3)
    dels = error_counts("the cat sat on the mat", "the mat")
    assert (dels.substitutions, dels.deletions, dels.insertions, dels.hits) == (0, 4, 0, 2)
    assert dels.wer == pytest.approx(4 / 6)
    same = error_counts("Twenty-five dollars, please!", "$25 please")
    assert same.wer == 0.0 and same.cer == 0.0 and same.ref_words == 2


def test_empty_hypothesis_is_all_deletions() -> None:
    for hyp in ("", "   ", "Um.", None):
        c = error_counts("hello big world", hyp)
        assert (c.substitutions, c.deletions, c.insertions, c.hits) == (0, 3, 0, 0)
        assert c.wer == 1.0 and c.cer == 1.0
        assert c.char_errors == c.ref_chars == len("hello big world")


def test_empty_reference() -> None:
    c = error_counts("[noise] um", "hello there")
    assert c.ref_words == 0 and c.ref_chars == 0
    assert c.insertions == 2 and c.substitutions == c.deletions == c.hits == 0
    assert c.char_errors == len("hello there")
    assert c.wer == math.inf and c.cer == math.inf
    both = error_counts("", "uh")
    assert both == ErrorCounts() and both.wer == 0.0 and both.cer == 0.0


def test_reference_must_be_str() -> None:
    with pytest.raises(TypeError):
        error_counts(None, "x")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        error_counts("x", 3)  # type: ignore[arg-type]


def test_corpus_scores_match_jiwer() -> None:
    refs = [r for r, _ in CASES]
    hyps = [h for _, h in CASES]
    nr, nh = [normalize(r) for r in refs], [normalize(h) for h in hyps]
    c = corpus_scores(refs, hyps)
    words = jiwer.process_words(nr, nh)
    assert (c.substitutions, c.deletions, c.insertions, c.hits) == (
        words.substitutions,
        words.deletions,
        words.insertions,
        words.hits,
    )
    assert c.wer == pytest.approx(jiwer.wer(nr, nh))
    assert c.cer == pytest.approx(jiwer.cer(nr, nh))
    # pooled, not the mean of per-utterance WERs
    per_utt = [error_counts(r, h) for r, h in zip(refs, hyps, strict=True)]
    assert c == sum(per_utt, ErrorCounts()) == sum(per_utt)
    assert c.wer != pytest.approx(sum(p.wer for p in per_utt) / len(per_utt))


def test_corpus_with_an_empty_reference_stays_finite() -> None:
    refs = ["hello world", "[music]"]
    hyps = ["hello world", "la la"]
    c = corpus_scores(refs, hyps)
    assert (c.ref_words, c.insertions) == (2, 2)
    assert c.wer == 1.0
    nr, nh = [normalize(r) for r in refs], [normalize(h) for h in hyps]
    assert c.wer == pytest.approx(jiwer.wer(nr, nh))


def test_corpus_all_empty_references() -> None:
    silent = corpus_scores(["", "um"], ["", "uh"])
    assert silent.wer == 0.0 and silent.cer == 0.0
    noisy = corpus_scores(["", "um"], ["", "oops"])
    assert noisy.insertions == 1 and noisy.wer == math.inf and noisy.cer == math.inf
    empty = corpus_scores([], [])
    assert empty == ErrorCounts() and empty.wer == 0.0


def test_corpus_length_mismatch() -> None:
    with pytest.raises(ValueError):
        corpus_scores(["a", "b"], ["a"])


# --------------------------------------------------------------------------- grouped


ROWS = [
    # "the"->"a": 1 word sub; chars 22 ref, "the"->"a" = 3 char edits
    {
        "reference": "the cat sat on the mat",
        "hypothesis": "the cat sat on a mat",
        "tags": {"accent": "us", "snr": "high"},
    },
    # 2 words, 11 chars, no errors
    {
        "reference": "Hello, World!",
        "hypothesis": "hello world",
        "tags": {"accent": "uk", "snr": "low"},
    },
    # 3 words, 1 deletion; 21 chars, 9 char deletions (" everyone"); snr missing
    {"reference": "good morning everyone", "hypothesis": "good morning", "tags": {"accent": "us"}},
    # ref "yes" (1 word, 3 chars), hyp "yes yes": 1 insertion, 4 char insertions
    {"reference": "Um, yes.", "hypothesis": "yes yes", "tags": {"accent": "uk", "snr": "low"}},
    # "$25": 1 word, 3 chars, no errors; snr None -> unknown
    {
        "reference": "Twenty-five dollars",
        "hypothesis": "$25",
        "tags": {"accent": "au", "snr": None},
    },
]


def test_grouped_scores_by_hand() -> None:
    report = grouped_scores(ROWS, ["accent", "snr"])
    assert isinstance(report, EvalReport)
    assert report.group_by == ("accent", "snr")

    o = report.overall
    assert (o.group, o.value, o.n_utterances) == ("overall", "all", 5)
    assert (o.counts.substitutions, o.counts.deletions, o.counts.insertions) == (1, 1, 1)
    assert o.counts.ref_words == 13 and o.wer == pytest.approx(3 / 13)
    assert o.counts.ref_chars == 60 and o.cer == pytest.approx(16 / 60)

    expected = {
        # key: value: (n, S, D, I, ref_words, wer, cer)
        "accent": {
            "au": (1, 0, 0, 0, 1, Fraction(0), Fraction(0)),
            "uk": (2, 0, 0, 1, 3, Fraction(1, 3), Fraction(4, 14)),
            "us": (2, 1, 1, 0, 9, Fraction(2, 9), Fraction(12, 43)),
        },
        "snr": {
            "high": (1, 1, 0, 0, 6, Fraction(1, 6), Fraction(3, 22)),
            "low": (2, 0, 0, 1, 3, Fraction(1, 3), Fraction(4, 14)),
            UNKNOWN: (2, 0, 1, 0, 4, Fraction(1, 4), Fraction(9, 24)),
        },
    }
    for key, values in expected.items():
        assert [gs.value for gs in report.groups[key]] == list(values)  # sorted, unknown last
        for value, (n, s, d, i, words, wer, cer) in values.items():
            gs = report.score(key, value)
            assert (gs.group, gs.n_utterances) == (key, n)
            c = gs.counts
            assert (c.substitutions, c.deletions, c.insertions, c.ref_words) == (s, d, i, words)
            assert gs.wer == pytest.approx(float(wer))
            assert gs.cer == pytest.approx(float(cer))

    # each group key partitions the rows
    for key in report.group_by:
        assert sum((gs.counts for gs in report.groups[key]), ErrorCounts()) == o.counts


def test_grouped_scores_missing_tags_and_keys() -> None:
    rows = [
        {"reference": "a b", "hypothesis": "a b", "tags": {"lang": "en"}},
        {"reference": "a b", "hypothesis": "a"},  # no tags at all
        {"reference": "a b", "hypothesis": "a c", "tags": None},
        {"reference": "a b", "hypothesis": None, "tags": {"lang": 3}},  # non-str value
    ]
    report = grouped_scores(iter(rows), ["lang"])
    assert [gs.value for gs in report.groups["lang"]] == ["3", "en", UNKNOWN]
    unk = report.score("lang", UNKNOWN)
    assert unk.n_utterances == 2 and unk.wer == pytest.approx(2 / 4)
    assert report.score("lang", 3).wer == 1.0


def test_grouped_scores_custom_keys_and_no_groups() -> None:
    rows = [{"ref": "twenty two", "hyp": "22", "meta": {"k": "v"}}]
    report = grouped_scores(rows, [], ref_key="ref", hyp_key="hyp", tags_key="meta")
    assert report.groups == {} and report.overall.wer == 0.0
    report = grouped_scores(rows, ["k"], ref_key="ref", hyp_key="hyp", tags_key="meta")
    assert report.score("k", "v").n_utterances == 1
    with pytest.raises(TypeError):
        grouped_scores(rows, "k")


def test_report_to_dict_is_json() -> None:
    noise = {"reference": "[noise]", "hypothesis": "spurious words", "tags": {"accent": "xx"}}
    rows = [*ROWS, noise]
    report = grouped_scores(rows, ["accent", "snr"])
    d = report.to_dict()
    text = json.dumps(d, allow_nan=False)  # strict JSON: inf rates become null
    back = json.loads(text)
    assert back["overall"]["n"] == 6
    assert back["groups"]["accent"]["xx"]["wer"] is None  # all-empty refs + insertions
    assert back["groups"]["accent"]["xx"]["insertions"] == 2
    us = back["groups"]["accent"]["us"]
    assert us["wer"] == pytest.approx(2 / 9)
    assert {"wer", "cer", "substitutions", "deletions", "insertions", "n", "ref_words"} <= set(us)
    assert back["group_by"] == ["accent", "snr"]


def test_report_to_rows() -> None:
    report = grouped_scores(ROWS, ["accent", "snr"])
    rows = report.to_rows()
    assert len(rows) == 1 + 3 + 3
    assert rows[0]["scope"] == "overall"
    assert {r["scope"] for r in rows[1:]} == {"group"}
    assert set(rows[0]) == {
        "scope",
        "group",
        "value",
        "n",
        "wer",
        "cer",
        "sub",
        "del",
        "ins",
        "ref_words",
    }
    us = next(r for r in rows if (r["group"], r["value"]) == ("accent", "us"))
    assert (us["n"], us["sub"], us["del"], us["ins"]) == (2, 1, 1, 0)
    json.dumps(rows, allow_nan=False)


# --------------------------------------------------------------------------- rendering


def test_format_table() -> None:
    report = grouped_scores(ROWS, ["accent", "snr"])
    table = format_table(report)
    assert "23.1" in table  # overall WER 3/13
    for key in ("accent", "snr"):
        for gs in report.groups[key]:
            assert gs.value in table
    assert "22.2" in table  # accent=us, 2/9
    lines = table.splitlines()
    assert "overall" in lines[2]
    # aligned: every non-rule line has the same width up to trailing spaces
    widths = {len(line) for line in lines if not line.startswith("-")}
    assert len(widths) == 1
    assert str(report) == table


def test_format_table_inf() -> None:
    report = grouped_scores([{"reference": "", "hypothesis": "boo", "tags": {}}], ["x"])
    assert "inf" in format_table(report)


def test_to_markdown() -> None:
    report = grouped_scores(ROWS, ["accent"])
    md = to_markdown(report)
    lines = md.splitlines()
    assert lines[0].startswith("| group | value | n |")
    assert set(lines[1]) <= set("|:- ")
    assert len(lines) == 2 + 1 + 3
    assert "| overall | all | 5 |" in md and "23.1" in md


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_plot_report(tmp_path) -> None:
    report = grouped_scores(ROWS, ["accent", "snr"])
    out = plot_report(report, tmp_path / "sub" / "wer.png")
    assert out == tmp_path / "sub" / "wer.png"
    data = out.read_bytes()
    w, h = _png_size(data)
    assert w > 300 and h > 200
    assert 1_000 < len(data) < 100_000


def test_plot_report_many_values_inf_and_no_groups(tmp_path) -> None:
    rows = [
        {"reference": "a b c", "hypothesis": "a b", "tags": {"speaker": f"speaker_{i:02d}"}}
        for i in range(12)
    ]
    rows.append({"reference": "", "hypothesis": "x", "tags": {"speaker": "silence"}})
    report = grouped_scores(rows, ["speaker"])
    data = plot_report(report, str(tmp_path / "many.png")).read_bytes()
    _png_size(data)
    assert len(data) < 100_000
    data = plot_report(grouped_scores(rows), tmp_path / "overall.png").read_bytes()
    _png_size(data)
    assert len(data) < 100_000


def test_plot_report_stays_small_with_many_groups(tmp_path) -> None:
    rows = [
        {
            "reference": "a b c d",
            "hypothesis": "a x c",
            "tags": {"speaker": f"speaker_{i}", "domain": f"domain_{i % 30}", "k": f"v{i % 7}"},
        }
        for i in range(60)
    ]
    report = grouped_scores(rows, ["speaker", "domain", "k"])
    data = plot_report(report, tmp_path / "big.png").read_bytes()
    _png_size(data)
    assert len(data) < 100_000
