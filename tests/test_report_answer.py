"""The HTML report's opening answer and its plot labels, against the committed result fixtures.

Every figure a sentence must state is computed here from the fixture's own rows and profiles, not written down.
"""

import json
import re
from html import unescape
from pathlib import Path

import matplotlib
import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text

from mnbench.report import build_report, load_report
from mnbench.report.answer import answers
from mnbench.report.html import to_html
from mnbench.report.labels import Label, place_labels
from mnbench.report.plots import PLOTS, plot_style

RESULTS = Path(__file__).parent / "fixtures" / "results"
NEWEST_XEON = RESULTS / "bench-xeon-2026-11-27.json"


@pytest.fixture(scope="module")
def report():
    return load_report([RESULTS])


@pytest.fixture(scope="module")
def page(report):
    return to_html(report)


def _answer_paragraphs(page: str) -> list[str]:
    section = re.search(r'<section id="answer">(.*?)</section>', page, flags=re.S).group(1)
    return [unescape(p) for p in re.findall(r"<p>(.*?)</p>", section, flags=re.S)]


def _paragraph_for(paragraphs: list[str], row) -> str:
    head = (f"On {row['machine']} · {row['device']} ({row['runtime']}, {row['precision']}, {row['threads']} threads, "
            f"batch {row['batch']})")
    (paragraph,) = [p for p in paragraphs if p.startswith(head)]
    return paragraph


def test_each_device_sentence_states_its_realized_and_theoretical_figures(report, page):
    paragraphs = _answer_paragraphs(page)
    devices = {(r["machine"], r["device"], r["runtime"], r["precision"], r["threads"], r["batch"]) for r in report.rows}
    assert len(paragraphs) == len(devices) == 4  # one per machine/device of the fixtures
    for row in report.rows:
        paragraph = _paragraph_for(paragraphs, row)
        kept = round(100 * row["realized_speedup"] / row["theoretical_speedup"])
        name = row["arch"].upper()  # v1 -> V1: the fixtures are all width 1.0, resolution 224
        expected = (f"{kept} % of its {row['theoretical_speedup']:.2f}× MAC saving "
                    f"(realized {row['realized_speedup']:.2f}×)")
        assert expected in paragraph, (expected, paragraph)
        assert re.search(rf"\b{name} (keeps )?{kept} %", paragraph), paragraph


def test_the_sentence_follows_the_file_not_a_template():
    # Halve the separable V1's latency on bench-xeon's cpu: the realized speedup, and so the kept share, doubles.
    doc = json.loads(NEWEST_XEON.read_text())
    for record in doc["records"]:
        if (record["arch"], record["variant"], record["device"]) == ("v1", "separable", "cpu"):
            record["samples_ms"] = [x / 2 for x in record["samples_ms"]]
            record["latency_ms"] = {k: v / 2 if isinstance(v, (int, float)) else v
                                    for k, v in record["latency_ms"].items()}
    before = build_report([(NEWEST_XEON, json.loads(NEWEST_XEON.read_text()))])
    after = build_report([(NEWEST_XEON, doc)])
    (row_before,) = [r for r in before.rows if (r["device"], r["arch"]) == ("cpu", "v1")]
    (row_after,) = [r for r in after.rows if (r["device"], r["arch"]) == ("cpu", "v1")]
    assert row_after["realized_speedup"] == pytest.approx(2 * row_before["realized_speedup"], rel=1e-6)
    text = _paragraph_for(_answer_paragraphs(to_html(after)), row_after)
    assert f"V1 keeps {round(100 * row_after['share_kept'])} %" in text
    assert f"realized {row_after['realized_speedup']:.2f}×" in text


def test_depthwise_share_comes_from_the_profile_and_only_where_profiled(report, page):
    paragraphs = _answer_paragraphs(page)
    (profile,) = [p for p in report.profiles if p["variant"] == "separable"]
    (depthwise,) = [c for c in profile["categories"] if c["category"] == "depthwise"]
    mac_share = depthwise.get("mac_share", depthwise.get("flop_share"))  # the fixture predates the rename
    time_text, mac_text = f"{100 * depthwise['time_share']:.0f} %", f"{100 * mac_share:.1f} %"
    assert mac_share < 0.1 <= depthwise["time_share"]  # so the formats above are the ones the page uses
    profiled = [p for p in paragraphs if p.startswith(f"On {profile['machine']} · {profile['device']} ")]
    assert len(profiled) == 1
    assert f"Depthwise layers take {time_text} of the time for {mac_text} of the MACs" in profiled[0]
    others = [p for p in paragraphs if p not in profiled]
    assert others and not any("Depthwise" in p for p in others)


def test_many_pairs_are_summarised_by_range_and_median(report):
    rows = [dict(report.rows[0], width=w, theoretical_speedup=report.rows[0]["theoretical_speedup"],
                 realized_speedup=report.rows[0]["theoretical_speedup"] * share)
            for w, share in [(0.25, 0.3), (0.5, 0.4), (0.75, 0.5), (1.0, 0.6), (1.25, 0.9)]]
    (answer,) = answers(type(report)(rows=rows, unpaired=[], profiles=[], machines={}, peaks={}))
    assert "the 5 models keep 30 % to 90 % of their MAC saving (median 50 %)" in answer.sentences[0]


def test_machine_details_are_folded_into_details(report, page):
    blocks = re.findall(r'<details class="machine">\s*<summary>(.*?)</summary>(.*?)</details>', page, flags=re.S)
    assert len(blocks) == len(report.machines) == 2
    for label, machine in report.machines.items():
        (summary, folded), = [(s, f) for s, f in blocks if unescape(s).startswith(f"{label}: ")]
        assert machine["cpu_model"] in unescape(summary) and "\n" not in summary  # the one line
        assert "<table>" in folded and "cpu_flags" in folded  # the full record, folded away
    # No machine table outside a <details>: the page opens with the answer, not with machine records.
    outside = re.sub(r"<details\b.*?</details>", "", page, flags=re.S)
    assert "cpu_flags" not in outside and "Gold 6338" not in outside


def _label_and_point_boxes(fig: Figure):
    """(label boxes, point boxes) in display units, measured on the finished figure."""
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    labels = [Text.get_window_extent(t, renderer) for t in ax.texts]
    radius = 3 * fig.dpi / 72  # a 6 pt marker
    points = []
    for collection in ax.collections:
        points += [tuple(p) for p in collection.get_offset_transform().transform(collection.get_offsets())]
    for line in ax.lines:
        if line.get_marker() not in (None, "None", "", " "):
            points += [tuple(p) for p in line.get_transform().transform(line.get_xydata())]
    boxes = [matplotlib.transforms.Bbox.from_extents(x - radius, y - radius, x + radius, y + radius)
             for x, y in points]
    return labels, boxes


@pytest.mark.parametrize("name", ["speedup", "profile"])
def test_plot_labels_overlap_neither_each_other_nor_the_points(report, name):
    with plot_style():
        fig = PLOTS[name][1](report)
        fig.canvas.draw()
    labels, points = _label_and_point_boxes(fig)
    assert labels and points
    for i, box in enumerate(labels):
        assert not any(box.overlaps(other) for other in labels[i + 1:])
        assert not any(box.overlaps(point) for point in points)
    legend = fig.legends[0].get_window_extent(fig.canvas.get_renderer())
    assert legend.y1 <= fig.axes[0].get_window_extent().y0  # below the axes, clear of points and labels


def test_crowded_labels_spread_out_or_are_left_out_never_stacked():
    fig = Figure(figsize=(4, 3), layout="constrained")
    matplotlib.backends.backend_agg.FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    xs = [1 + 0.02 * i for i in range(30)]  # thirty points in a clump
    ax.scatter(xs, xs, s=36)
    ax.set(xlim=(0, 3), ylim=(0, 3))
    left_out = place_labels(fig, ax, [Label(x, x, f"point {i}") for i, x in enumerate(xs)], points=[])
    fig.canvas.draw()
    labels, points = _label_and_point_boxes(fig)
    assert len(labels) + left_out == 30 and len(labels) >= 5
    for i, box in enumerate(labels):
        assert not any(box.overlaps(other) for other in labels[i + 1:])
        assert not any(box.overlaps(point) for point in points)


def test_roofline_figures_are_inlined_after_the_speedup_plot_and_before_the_tables(report, monkeypatch):
    # The roofline plot comes from its own module; stand one in that draws one figure per device.
    import importlib.machinery
    import sys
    import types

    from mnbench.report import html

    def roofline_figures(rep):
        figures = {}
        for device in sorted({f"{r['machine']} · {r['device']}" for r in rep.rows}):
            fig = Figure(figsize=(3, 2))
            fig.add_subplot().plot([1, 2], [1, 2])
            figures[device] = fig
        return figures

    module = types.ModuleType(html.ROOFLINE_MODULE)
    module.__spec__ = importlib.machinery.ModuleSpec(html.ROOFLINE_MODULE, None)
    module.roofline_figures = roofline_figures
    monkeypatch.setitem(sys.modules, html.ROOFLINE_MODULE, module)
    page = to_html(report)
    ids = re.findall(r'<figure id="(plot-roofline-\d+)">', page)
    assert len(ids) == 4  # one per machine/device of the fixtures
    assert (page.index('<figure id="plot-speedup">') < page.index(f'<figure id="{ids[0]}">')
            < page.index("<table>\n<thead>"))
    assert "Roofline on bench-xeon · cpu" in page
