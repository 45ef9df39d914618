"""Known-answer tests for leaderboard aggregation (hand-computed boards) and for the
rendered boards: Markdown and the autoescaped HTML (Jinja2 templates), and the PNG plot."""

from __future__ import annotations

import json
import math
import pathlib
import zlib
from typing import Any

import pytest

from recbench import leaderboard, report
from recbench.leaderboard import board as board_mod, report as report_mod
from recbench.components import DiagnosticsChart, DiagnosticsTable, Task

DS = {"name": "hand", "fingerprint": "ds-main", "synthetic": True, "n_users": 4, "n_songs": 8,
      "notice": "dataset 'msd' is not available; running on the fallback <synth>"}
SPLIT = {"name": "cold-item", "seed": 0, "fingerprint": "sp-main", "protocol": "cold-item"}
INFO = {"auc": {"label": "AUC", "higher_is_better": True},
        "pop": {"label": "Popularity", "higher_is_better": False}}


def row(model: str, seed: int, auc: float | None, ci: list[float] | None, *, pop: float = 1.0,
        oracle: bool = False, status: str = "ok", task: str = "recommendation",
        dataset: str = "ds-main", label: str | None = None, pairs: float = 100.0,
        fit_s: float = 1.0) -> dict[str, Any]:
    """One result row with just the fields the leaderboard reads."""
    return {
        "suite": "hand", "task": task, "status": status, "seed": seed,
        "cell_id": f"{task}/{model}/{seed}", "error": "boom" if status != "ok" else None,
        "dataset": {**DS, "fingerprint": dataset}, "split": SPLIT, "protocol": "cold-item",
        "env": {"recbench": "0.1.0", "git_commit": "abc123", "torch": "2.x"},
        "device": {"type": "cpu"},
        "model": {"id": model, "name": model.rstrip("0123456789"),
                  "label": label or model.upper(), "uses_test_interactions": oracle,
                  "consumes": [], "config_hash": f"h-{model}", "params": {}},
        "metrics": {"auc": auc, "pop": pop}, "metrics_ci": {"auc": ci, "pop": None},
        "metrics_ci_level": 0.9, "metric_info": INFO,
        "throughput": {"scoring_pairs_per_s": pairs},
        "timing": {"fit_s": fit_s, "eval_s": 0.5, "total_s": fit_s + 0.5},
        "peak_rss_mb": 10.0 * (seed + 1), "extra": {"share": 0.25 * (seed + 1)},
    }


ROWS = [
    # "a": three seeds. auc 0.5/0.75/1.0 -> mean 0.75, sample std 0.25; interval bounds are
    # the means of the per-seed bounds: (0.25+0.5+0.75)/3 = 0.5 and (0.75+1+1.25)/3 = 1.0.
    row("a", 0, 0.5, [0.25, 0.75], pop=2.0, pairs=100.0, fit_s=1.0),
    row("a", 1, 0.75, [0.5, 1.0], pop=2.0, pairs=200.0, fit_s=2.0),
    row("a", 2, 1.0, [0.75, 1.25], pop=2.0, pairs=300.0, fit_s=3.0),
    # "b": one seed, the best cold-start auc -> rank 1, std 0.
    row("b", 0, 0.875, [0.8125, 0.9375], pop=5.0),
    # "c": seed 0 ok, seed 1 failed -> one seed on the board, one failed cell listed.
    row("c", 0, 0.25, [0.125, 0.375], pop=3.0),
    row("c", 1, None, None, status="failed"),
    # "o": an oracle, better than everyone, but unranked in its own section after cold rows.
    row("o", 0, 0.9375, [0.875, 1.0], pop=0.5, oracle=True),
    # "d": other data -> refused and listed as excluded.
    row("d", 0, 0.99, [0.98, 1.0], dataset="ds-other"),
    # another task -> its own board.
    row("a", 0, 0.625, [0.5, 0.75], task="tagging"),
]
REFS = [{"label": "Paper A", "source": "Someone 2018, Table 1", "auc": 0.7},
        {"task": "tagging", "label": "Paper T", "auc": 0.6}]


def test_known_answer_board_means_std_intervals_sections_and_order():
    lb = leaderboard.build(ROWS, references=REFS, primary_metric="auc")
    assert lb["suite"] == "hand" and set(lb["tasks"]) == {"recommendation", "tagging"}
    board = lb["tasks"]["recommendation"]
    assert board["primary_metric"] == "auc" and board["columns"] == ["auc", "pop"]
    assert board["ci_level"] == 0.9 and leaderboard.ci_label(board) == "90% CI"
    rows = board["rows"]
    assert [(r.get("model_id", r["label"]), r["section"], r.get("rank")) for r in rows] == [
        ("b", leaderboard.SECTION_COLD, 1), ("a", leaderboard.SECTION_COLD, 2),
        ("c", leaderboard.SECTION_COLD, 3), ("o", leaderboard.SECTION_ORACLE, None),
        ("Paper A", leaderboard.SECTION_REFERENCE, None)]
    b, a, c, o, ref = rows
    assert a["metrics"]["auc"] == {"mean": 0.75, "std": 0.25, "ci": [0.5, 1.0], "n_seeds": 3}
    assert a["metrics"]["pop"] == {"mean": 2.0, "std": 0.0, "ci": None, "n_seeds": 3}
    assert a["seeds"] == [0, 1, 2]
    assert a["throughput"] == {"scoring_pairs_per_s": 200.0}
    assert a["timing"] == {"fit_s": 2.0, "eval_s": 0.5, "total_s": 2.5}
    assert a["peak_rss_mb"] == 30.0 and a["extra"] == {"share": 0.25}  # first seed's extra
    assert b["metrics"]["auc"] == {"mean": 0.875, "std": 0.0, "ci": [0.8125, 0.9375],
                                   "n_seeds": 1}
    assert c["seeds"] == [0] and c["metrics"]["auc"]["mean"] == 0.25
    assert o["uses_test_interactions"] is True and "rank" not in o
    assert ref == {"label": "Paper A", "section": leaderboard.SECTION_REFERENCE,
                   "source": "Someone 2018, Table 1", "uses_test_interactions": None,
                   "metrics": {"auc": {"mean": 0.7}}}
    assert board["failed"] == [{"model_id": "c", "seed": 1, "error": "boom"}]
    assert board["excluded_other_data"] == [{"model_id": "d", "seed": 0,
                                             "dataset": "ds-other", "split": "sp-main"}]
    assert board["dataset"]["fingerprint"] == "ds-main"
    tagging = lb["tasks"]["tagging"]
    assert [r["label"] for r in tagging["rows"]] == ["A", "Paper T"]
    assert tagging["rows"][0]["metrics"]["auc"]["mean"] == 0.625


def test_a_lower_is_better_primary_metric_ranks_ascending_and_plan_ids_filter():
    board = leaderboard.build(ROWS, primary_metric="pop")["tasks"]["recommendation"]
    assert [(r["model_id"], r.get("rank")) for r in board["rows"]] == [
        ("a", 1), ("c", 2), ("b", 3), ("o", None)]
    plan = {r["cell_id"] for r in ROWS if r["model"]["id"] != "b"}
    board = leaderboard.build(ROWS, primary_metric="auc",
                              plan_ids=plan)["tasks"]["recommendation"]
    assert [r["model_id"] for r in board["rows"]] == ["a", "c", "o"]
    # An unknown primary metric falls back to the first column.
    assert leaderboard.build(ROWS, primary_metric="nope")["tasks"]["tagging"][
        "primary_metric"] == "auc"


class _DiagTask(Task):
    name = "recommendation"

    def run(self, ctx):  # pragma: no cover - not run
        raise NotImplementedError

    @classmethod
    def diagnostics_table(cls, entries: list[dict[str, Any]]) -> DiagnosticsTable | None:
        return DiagnosticsTable("**Shares.** per model <i>share</i> of `x`.",
                                ["model", "share"],
                                [[e["label"], e["extra"]["share"]] for e in entries])

    @classmethod
    def diagnostics_chart(cls, entries: list[dict[str, Any]]) -> DiagnosticsChart | None:
        return DiagnosticsChart("Shares", "share", ["g1", "g2"],
                                {e["label"]: [e["extra"]["share"], None] for e in entries},
                                baseline=0.5, ylim=(0.0, 1.0))


XSS = "<script>alert(1)</script>"


def _lb(monkeypatch) -> dict[str, Any]:
    # patched where the board and the page look it up
    monkeypatch.setattr(board_mod, "task_class", lambda board: _DiagTask)
    monkeypatch.setattr(report_mod, "task_class", lambda board: _DiagTask)
    rows = [dict(r) for r in ROWS if r["task"] == "recommendation"]
    rows[3] = {**rows[3], "model": {**rows[3]["model"], "label": f"B {XSS}"}}
    return leaderboard.build(rows, references=REFS, primary_metric="auc")


def test_html_board_is_autoescaped_and_shows_sections_intervals_and_diagnostics(monkeypatch):
    page = report.render_html(_lb(monkeypatch), png=b"\x89PNG fake")
    assert "<script>" not in page
    assert "B &lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "fallback &lt;synth&gt;" in page  # the notice is escaped too
    # Caption: escaped first, then **bold** and `code` become tags.
    assert ("<strong>Shares.</strong> per model &lt;i&gt;share&lt;/i&gt; of <code>x</code>."
            in page)
    # Each interval is a small line under its value (compact bounds); the std over seeds.
    assert '0.7500 ± 0.2500<span class="ci" title="90% CI">0.5000 – 1.0000</span>' in page
    assert '0.8750<span class="ci" title="90% CI">0.8125 – 0.9375</span>' in page
    assert page.index(leaderboard.SECTION_COLD) < page.index(leaderboard.SECTION_ORACLE) \
        < page.index(leaderboard.SECTION_REFERENCE)
    assert "Someone 2018, Table 1" in page and "Paper A" in page
    assert 'class="tag oracle">ORACLE' in page and "95%" not in page
    assert "<th>share</th>" in page and '<td class="model">A</td>' in page  # diagnostics
    assert "Failed cells" in page and "Excluded (different data or split)" in page
    assert "data:image/png;base64,iVBORyBmYWtl" in page


def test_board_assembled_at_several_commits_names_each_with_its_cells():
    """Cells rerun at a later commit (--resume) or run outside git: the header lists every
    commit with its number of cells, most first; failed and excluded rows do not count."""
    def at(r: dict[str, Any], env: dict[str, Any]) -> dict[str, Any]:
        return {**r, "env": {"recbench": "0.1.0", "torch": "2.x", **env}}

    rec = [r for r in ROWS if r["task"] == "recommendation"]  # 6 ok, 1 failed, 1 excluded
    rows = ([at(r, {"git_commit": "def456"}) for r in rec[:2]]
            + [at(rec[2], {"git_commit": None, "git_note": "not a git checkout"})] + rec[3:])
    md = leaderboard.render_markdown(leaderboard.build(rows, primary_metric="auc"))
    # abc123: b, c seed 0 and o (c seed 1 failed, d other data); def456: a seeds 0-1
    assert ("- recbench 0.1.0 (cells at commit abc123 (3), commit def456 (2), not a git "
            "checkout (1)), torch 2.x, device cpu") in md.splitlines()
    page = report.render_html(leaderboard.build(rows, primary_metric="auc"), png=b"")
    assert "cells at commit abc123 (3), commit def456 (2), not a git checkout (1)" in page


def test_markdown_board_is_plain_text_with_tables_notes_and_lists(monkeypatch):
    md = leaderboard.render_markdown(_lb(monkeypatch))
    lines = md.splitlines()
    assert lines[0] == "# Leaderboard: hand"
    assert "## hand · recommendation · hand (4 users x 8 songs) — SYNTHETIC DATA" in lines
    assert ("> **NOTICE:** dataset 'msd' is not available; running on the fallback <synth>"
            in lines)  # not HTML-escaped
    assert "- recbench 0.1.0 (commit abc123), torch 2.x, device cpu" in lines
    table = [ln for ln in lines if ln.startswith("|")]
    assert [c.strip() for c in table[0].strip("|").split("|")] == [
        "#", "model", "section", "setting", "AUC [auc]", "90% CI", "Popularity [pop]", "90% CI", "seeds",
        "score pairs/s", "fit s"]
    cells = [[c.strip() for c in ln.strip("|").split("|")] for ln in table[2:7]]
    assert cells[0] == ["1", f"B {XSS}", "cold-start", "cold-item", "0.8750", "[0.8125, 0.9375]",
                        "5.0000", "", "1", "100.0", "1.0"]
    assert cells[1] == ["2", "A", "cold-start", "cold-item", "0.7500 ± 0.2500", "[0.5000, 1.0000]",
                        "2.0000", "", "3", "200.0", "2.0"]
    assert cells[3][:5] == ["", "O", "oracle / upper bound",
                            "cold-item, oracle", "0.9375"]
    assert cells[4] == ["", "Paper A", "reference (published)", "", "0.7000", "", "–", "", "",
                        "–", ""]
    assert "**Shares.** per model <i>share</i> of `x`." in lines
    diag = [[c.strip() for c in ln.strip("|").split("|")] for ln in table[7:]]
    assert diag[0] == ["model", "share"] and diag[2] == ["B " + XSS, "0.2500"]
    assert lines[lines.index("**Failed cells:**") + 2] == (
        '- {"model_id": "c", "seed": 1, "error": "boom"}')
    assert "**Excluded (different data or split):**" in lines
    assert md.endswith("}\n\n") and not md.endswith("\n\n\n")


def test_plot_is_written_with_model_keyed_colours(tmp_path, monkeypatch):
    lb = _lb(monkeypatch)
    path = report.write_plots(tmp_path, lb)
    assert path == tmp_path / report.PLOT_NAME and path.read_bytes()[:4] == b"\x89PNG"
    rows = [r for r in lb["tasks"]["recommendation"]["rows"] if "model_id" in r]
    colours = report.model_colours(rows)
    assert colours == report.model_colours(list(reversed(rows)))  # not by row order
    assert len(set(colours.values())) == len(rows)  # clashes get the next free slot
    alone = report.model_colours([{"name": "wmf", "label": "WMF"}])
    assert alone == {"WMF": report.PALETTE[zlib.crc32(b"wmf") % len(report.PALETTE)]}


def test_builtin_models_keep_their_colour_on_every_board():
    names = ["popularity", "popularity-oracle", "wmf", "wmf-regression", "dcue",
             "dcue-item-index", "content-profile", "random"]
    every = report.model_colours([{"name": n, "label": n} for n in names])
    assert len(set(every.values())) == len(names)
    some = report.model_colours([{"name": n, "label": n} for n in names[::3]])
    assert some == {n: every[n] for n in names[::3]}


def test_templates_are_package_data():
    import importlib.resources

    files = importlib.resources.files("recbench.leaderboard") / "templates"
    assert {"leaderboard.md.j2", "leaderboard.html.j2"} <= {p.name for p in files.iterdir()}
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    pyproject = tomllib.loads((pathlib.Path(__file__).parents[1] / "pyproject.toml").read_text())
    data = pyproject["tool"]["setuptools"]["package-data"]["recbench"]
    assert "leaderboard/templates/*.j2" in data and "schema/*.json" in data
    assert any(d.startswith("jinja2>=") for d in pyproject["project"]["dependencies"])


def test_nan_metric_renders_as_a_dash():
    lb = leaderboard.build([row("a", 0, math.nan, None)], primary_metric="auc")
    header, rows = leaderboard.table_rows(json.loads(json.dumps(
        leaderboard._clean(lb)))["tasks"]["recommendation"])
    assert rows[0][4] == "–"


def test_every_row_states_its_setting_and_the_boards_data_rules():
    """Each row says the protocol it was scored by (oracles: test interactions seen) and its
    backbone; the board says the dataset's selection rules (the MSD's subset and tag rules),
    which hold for every row on it (rows on other data are excluded)."""
    rows = [row("a", 0, 0.75, [0.5, 1.0]), row("o", 0, 0.9, [0.8, 1.0], oracle=True)]
    rows[0]["model"]["params"] = {"backbone": "conv1d-lee2018"}
    for r in rows:
        r["dataset"] = {**r["dataset"], "manifest": {
            "subset_rule": "10,000 songs with most plays; mismatches <kept>",
            "tag_rule": "choi50: weight > 50", "n_dropped": 3}}
    lb = leaderboard.build(rows, primary_metric="auc")
    board = lb["tasks"]["recommendation"]
    settings = {e["model_id"]: e["setting"] for e in board["rows"]}
    assert settings == {"a": "cold-item; backbone conv1d-lee2018",
                        "o": "cold-item, oracle"}
    assert board_mod.data_rules(board) == [
        ("subset", "10,000 songs with most plays; mismatches <kept>"),
        ("tag", "choi50: weight > 50")]
    md = leaderboard.render_markdown(lb)
    assert "- subset rule (every row): 10,000 songs with most plays; mismatches <kept>" in md
    assert "- tag rule (every row): choi50: weight > 50" in md
    header, table = leaderboard.table_rows(board)
    assert header[3] == "setting" and table[0][3] == "cold-item; backbone conv1d-lee2018"
    html = report.render_html(lb)
    assert "mismatches &lt;kept&gt;" in html
    assert '<td class="setting">cold-item, oracle</td>' in html


def test_the_footer_says_what_each_boards_intervals_resample():
    """Intervals of per-user metrics resample users; the tagging and new-release tasks
    resample songs, artist clustering artists: the footer names it per board, and per
    column when a board's columns differ; rows that do not say count as users."""
    from recbench.leaderboard import board as B

    base = {"columns": ["auc", "pop"], "metric_info": {"auc": {}, "pop": {}}}
    assert B.ci_over(base) == "users"
    songs = {"columns": ["tag_auc_macro"],
             "metric_info": {"tag_auc_macro": {"ci_over": "songs"}}}
    assert B.ci_over(songs) == "songs"
    mixed = {"columns": ["ari", "nmi", "genre_accuracy"],
             "metric_info": {"ari": {"ci_over": "artists"}, "nmi": {"ci_over": "artists"},
                             "genre_accuracy": {"ci_over": "songs"}}}
    assert B.ci_over(mixed) == "artists (ari, nmi); songs (genre_accuracy)"
    rows = [dict(r, metric_info={k: {**v, "ci_over": "songs"} for k, v in INFO.items()})
            for r in ROWS]
    md = leaderboard.render_markdown(leaderboard.build(rows, primary_metric="auc"))
    assert "bootstrap over songs (mean of per-seed bounds)" in md
    assert "bootstrap over users" not in md
    page = report.render_html(leaderboard.build(rows, primary_metric="auc"), png=b"")
    assert "(bootstrap over songs; with several seeds" in page
    assert "bootstrap over users (mean" in leaderboard.render_markdown(
        leaderboard.build(ROWS, primary_metric="auc"))
