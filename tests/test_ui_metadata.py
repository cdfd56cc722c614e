"""What the Dagster UI shows a person: plots that fit its metadata modal, whole (every group,
panel and legend inside the figure), tables with short column names, rounded metrics."""

import doctest
import importlib
import json

import pytest
from dagster import FloatMetadataValue, IntMetadataValue, MetadataValue, TextMetadataValue

from assets.training_run import rounded, rounded_metadata
from training.eval.figures import MAX_WIDTH_PX, pack_rows
from training.eval.promotion import comparison_figure, comparison_table, plot_comparison
from training.eval.report import grouped_scores, plot_report, report_figure
from training.runtime.curves import PANELS, curves_figure, plot_curves

ACCENTS = ["caribbean", "gb", "nyc", "rp", "scottish", "us", "west_midlands"]
SNRS = ["0", "5", "10", "20", "clean"]
LOOP_IDS = ["baseline", "sft-asr-20261130-010630-5b56", "dpo-asr-20261130-010630-5b56"]


def _report(errors: int, n_values: int = 7):
    """60 utterances tagged like the demo's dev set (7 accents, 5 SNRs), `errors` words wrong
    in each third one."""
    rows = []
    for i in range(60):
        ref = "the quick brown fox jumps over the lazy dog"
        words = ref.split()
        hyp = words[:-errors] if i % 3 == 0 and errors else words
        accent = ACCENTS[i % n_values] if n_values <= 7 else f"accent_{i % n_values:02d}"
        rows.append({"reference": ref, "hypothesis": " ".join(hyp),
                     "tags": {"accent": accent, "snr_db": SNRS[i % 5]}})
    return grouped_scores(rows, ["accent", "snr_db"])


def _png_width(path) -> int:
    from PIL import Image

    return Image.open(path).width


def _inside(fig, artist) -> bool:
    """The artist's drawn extent lies within the figure (a pixel of slack for rounding)."""
    box = artist.get_window_extent(renderer=fig.canvas.get_renderer())
    width, height = fig.bbox.width, fig.bbox.height
    return box.x0 >= -1 and box.y0 >= -1 and box.x1 <= width + 1 and box.y1 <= height + 1


def _drawn_tick_labels(fig) -> list:
    fig.canvas.draw()
    return [t for ax in fig.axes if ax.axison for t in ax.get_xticklabels() if t.get_text()]


def test_rows_of_panels_never_exceed_the_width():
    assert pack_rows([4.7, 3.7]) == [[0, 1]]  # the demo's two group keys share a row
    assert pack_rows([1.8, 5.6, 4.3]) == [[0, 1], [2]]
    assert pack_rows([20.0, 20.0]) == [[0], [1]]


@pytest.mark.parametrize("n_values", [7, 30])
def test_wer_by_group_fits_the_modal_and_shows_every_group(tmp_path, n_values):
    report = _report(2, n_values)
    png = plot_report(report, tmp_path / "wer.png")
    assert _png_width(png) <= MAX_WIDTH_PX
    fig = report_figure(report)
    labels = _drawn_tick_labels(fig)
    expected = [gs.value for key in report.group_by for gs in report.groups[key]]
    assert [t.get_text() for t in labels] == expected  # every group value has its label
    assert all(_inside(fig, t) for t in labels)
    assert all(_inside(fig, ax.title) for ax in fig.axes if ax.axison)
    assert _inside(fig, fig._suptitle)


def test_comparison_plot_fits_with_every_group_and_the_legend_inside(tmp_path):
    reports = {label: _report(e) for label, e in zip(LOOP_IDS, (3, 2, 1), strict=True)}
    png = plot_comparison(reports, tmp_path / "cmp.png")
    assert _png_width(png) <= MAX_WIDTH_PX
    fig = comparison_figure(reports)
    labels = _drawn_tick_labels(fig)
    assert [t.get_text() for t in labels] == ["all", *ACCENTS, *SNRS]
    assert all(_inside(fig, t) for t in labels)
    assert [ax.get_title() for ax in fig.axes if ax.axison] == ["overall", "accent", "snr_db"]
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == LOOP_IDS
    assert _inside(fig, legend)


def test_training_curves_wrap_every_panel_into_rows(tmp_path):
    keys = [k for k, _ in PANELS]
    rows = [{"step": s, **{k: 0.1 * s for k in keys}, "reward/bucket/easy": 0.5}
            for s in range(1, 41)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    png = plot_curves(tmp_path / "metrics.jsonl", tmp_path / "curves.png")
    assert _png_width(png) <= MAX_WIDTH_PX
    fig = curves_figure(tmp_path / "metrics.jsonl")
    fig.canvas.draw()
    shown = [ax for ax in fig.axes if ax.axison]
    assert len(shown) == len(PANELS) + 1  # every panel, the per-bucket reward too
    assert any(ax.get_title().startswith("KL estimate") for ax in shown)
    assert all(_inside(fig, ax) and _inside(fig, ax.title) for ax in shown)


def test_the_markdown_comparison_names_columns_short_and_keeps_the_ids_below():
    reports = {label: _report(e) for label, e in zip(LOOP_IDS, (3, 2, 1), strict=True)}
    md = comparison_table(reports, markdown=True)
    assert "|group|value|n|baseline WER|sft WER|dpo WER|Δ dpo|" in md
    assert "|dpo|dpo-asr-20261130-010630-5b56|" in md
    assert len(md) < 1000  # the UI shows it in place, not behind a button
    text = comparison_table(reports)  # what the CLI prints keeps the full ids
    assert text.splitlines()[0].split() == [
        "group", "value", "n", "baseline", "WER", "sft-asr-20261130-010630-5b56", "WER",
        "dpo-asr-20261130-010630-5b56", "WER", "Δ", "dpo-asr-20261130-010630-5b56"]


def test_float_metrics_are_rounded_for_the_ui():
    assert rounded(2.5000000000000004e-07) == 2.5e-07
    assert rounded(0.6931471805599453) == 0.6931
    assert rounded(1234.5678) == 1235.0
    assert rounded(float("nan")) != rounded(float("nan"))  # NaN stays NaN
    reported = {"loss": MetadataValue.float(0.6931471805599453), "lr": 2.5000000000000004e-07,
                "step": MetadataValue.int(40), "objective": MetadataValue.text("dpo"),
                "stopped_early": False}
    out = rounded_metadata(reported)
    assert isinstance(out["loss"], FloatMetadataValue) and out["loss"].value == 0.6931
    assert out["lr"] == 2.5e-07
    assert isinstance(out["step"], IntMetadataValue) and out["step"].value == 40
    assert isinstance(out["objective"], TextMetadataValue) and out["stopped_early"] is False


@pytest.mark.parametrize("name", ["training.eval.figures", "assets.training_run"])
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0 and result.attempted > 0
