"""``rsbench report``: the leaderboard as one static HTML page, PNG plots and a Markdown summary.

Researchers would rather look than read: the page shows who wins where (best per column), the
spread over seeds (± std, bootstrap CI), the distance to published numbers, and enough
provenance to trust or distrust a number. It needs no server and no network at view time.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rsbench.results import leaderboard, report_plots
from rsbench.results.aggregate import EVALUATION, NO_PAPER, load_rows, read_paper, summarize

PAPER_NAME = "paper_results.csv"
PLOT_NAMES = ("heatmap.png", "ranks.png", "paper_scatter.png")
DASH = "—"


@dataclass
class Cell:
    """One table cell, rendered to both HTML (escaped) and Markdown from the same plain text."""

    text: str
    value: float | None = None  # numeric sort key for the page's JS
    note: str = ""  # a second, smaller line (CI, n)
    cls: str = ""
    title: str = ""


@dataclass
class Table:
    id: str
    title: str
    headers: list[str]
    rows: list[list[Cell]]
    caption: str = ""


# -- numbers and labels ----------------------------------------------------------------------
def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def fmt(x: Any) -> str:
    """Up to 4 decimals, trailing zeros dropped: the CSV's own precision, so values compare exactly."""
    if _missing(x) or x == "":
        return DASH
    try:
        return f"{float(x) + 0.0:.4f}".rstrip("0").rstrip(".")
    except (TypeError, ValueError):
        return str(x)


def _number(x: Any) -> float | None:
    """A finite float, or None (the page's sort key: missing values sort last)."""
    try:
        value = float(x)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _options_text(options: str) -> str:
    if not options:
        return ""
    try:
        parsed = json.loads(options)
    except json.JSONDecodeError:
        return options
    return ", ".join(f"{k}={v}" for k, v in sorted(parsed.items())) if isinstance(parsed, dict) else options


def _label_evaluations(table: pd.DataFrame) -> pd.DataFrame:
    """Name each evaluation ``task · split · protocol``, adding what else tells a task's
    evaluations apart (options, metric, precision, fixture or real data, metric definition, card),
    and each model by its preset, adding the checkpoint where one preset ran with several."""
    table = table.copy()
    labels: dict[int, str] = {}
    for task, part in table.groupby("task", sort=False):
        variants = {o: _options(o) for o in part["options"].unique()}
        keys = sorted({k for v in variants.values() for k in v})
        differing = [k for k in keys if len({json.dumps(v.get(k), sort_keys=True) for v in variants.values()}) > 1]
        varies = {c: part[c].astype(str).nunique() > 1
                  for c in ("metric", "precision", "fixture", "metric_definition", "card")}
        definitions = {d: f"metric definition {i + 1}" for i, d in
                       enumerate(sorted(d for d in part["metric_definition"].astype(str).unique() if d))}
        definitions[""] = "metric definition not recorded"
        for idx, r in part.iterrows():
            chosen = variants[r["options"]]
            extra = [f"{k}={chosen[k]}" if k in chosen else f"{k} unset" for k in differing]
            extra += [str(r["metric"]) or "metric not recorded"] if varies["metric"] else []
            extra += [str(r["precision"])] if varies["precision"] else []
            extra += ["fixture data" if r["fixture"] else "real data"] if varies["fixture"] else []
            extra += [definitions[str(r["metric_definition"])]] if varies["metric_definition"] else []
            extra += [f"card {r['card'] or 'not recorded'}"] if varies["card"] else []
            labels[idx] = " · ".join([str(task), str(r["split"]) or "split not recorded",
                                      str(r["protocol"]) or "protocol not recorded", *extra])
    table["evaluation"] = pd.Series(labels, dtype=object)
    # a label shared by evaluations that still differ (e.g. options spelled differently) gets a number
    ident = table[EVALUATION].astype(str).agg("\x1f".join, axis=1)
    for label, part in table.groupby("evaluation", sort=False):
        kinds = list(dict.fromkeys(ident[part.index]))
        if len(kinds) > 1:
            for idx in part.index:
                table.loc[idx, "evaluation"] = f"{label} · variant {kinds.index(ident[idx]) + 1}"
    shas = table.groupby("backbone")["checkpoint_sha256"].nunique()
    table["model"] = [f"{b} @{str(c)[:10] or 'no checkpoint'}" if shas[b] > 1 else str(b)
                      for b, c in zip(table["backbone"], table["checkpoint_sha256"], strict=True)]
    return table


def _options(options: str) -> dict[str, Any]:
    try:
        parsed = json.loads(options) if options else {}
    except json.JSONDecodeError:
        return {"options": options}
    return parsed if isinstance(parsed, dict) else {"options": options}


def _higher_is_better(task: str) -> bool:
    from rsbench.plugin_api.plugin_host import get_catalog

    tasks = get_catalog().tasks
    return tasks.get(task).higher_is_better if task in tasks else True


def _verified(row: dict[str, Any]) -> bool:
    return str(row.get("verified", "")).strip().lower() in ("yes", "true", "1")


# -- the data behind the page -----------------------------------------------------------------
@dataclass
class ReportData:
    frame: pd.DataFrame  # every row of the leaderboard
    table: pd.DataFrame  # summarize(), plus "evaluation" and "model" labels
    evaluations: list[str]
    means: pd.DataFrame  # model × evaluation
    normalized: pd.DataFrame
    ranks: pd.DataFrame
    paper: pd.DataFrame | None


def collect(results_dir: Path) -> ReportData:
    """Read the leaderboard and paper numbers once and derive every table the report shows."""
    frame = load_rows(results_dir)
    table = summarize(results_dir)
    paper = read_paper(results_dir / PAPER_NAME)
    if table.empty:
        empty = pd.DataFrame()
        return ReportData(frame, table.assign(evaluation=[], model=[]), [], empty, empty, empty, paper)
    table = _label_evaluations(table)
    order = table.sort_values(["family", "task", "split", "protocol", "evaluation"])["evaluation"].drop_duplicates()
    evaluations = list(order)
    # unstack, not pivot_table: an evaluation whose every mean is NaN must stay a column
    means = (table.set_index(["model", "evaluation"])["mean"].astype(float)
             .groupby(level=[0, 1]).first().unstack().reindex(columns=evaluations))
    hib = {e: _higher_is_better(str(table.loc[table["evaluation"] == e, "task"].iloc[0])) for e in evaluations}
    normalized = means.copy()
    ranks = means.copy()
    for e in evaluations:
        col = means[e]
        lo, hi = col.min(), col.max()
        scaled = (col - lo) / (hi - lo) if hi > lo else col.where(col.isna(), 1.0)
        normalized[e] = scaled if hib[e] else 1 - scaled if hi > lo else scaled
        ranks[e] = col.rank(ascending=not hib[e], method="min")
    return ReportData(frame, table, evaluations, means, normalized, ranks, paper)


# -- tables ---------------------------------------------------------------------------------
def _summary_cell(r: pd.Series, best: bool) -> Cell:
    return Cell(("★ " if best else "") + f"{fmt(r['mean'])} ± {fmt(r['std'])}", value=_number(r["mean"]),
                note=f"CI [{fmt(r['ci_low'])}, {fmt(r['ci_high'])}] · n={int(r['n'])}",
                cls="best" if best else "", title=f"{r['metric']}; IQM {fmt(r['iqm'])}")


def overall_table(data: ReportData) -> Table:
    """Models × evaluations: mean ± std over seeds, CI and n below, best per column starred."""
    rows = []
    mean_rank = data.ranks.mean(axis=1) if not data.ranks.empty else pd.Series(dtype=float)
    for model in sorted(data.means.index):
        row = [Cell(str(model))]
        for e in data.evaluations:
            hit = data.table[(data.table["model"] == model) & (data.table["evaluation"] == e)]
            row.append(_summary_cell(hit.iloc[0], data.ranks.loc[model, e] == 1) if len(hit) else Cell(DASH))
        row.append(Cell(fmt(mean_rank.get(model)), value=_number(mean_rank.get(model))))
        rows.append(row)
    metrics = [str(data.table.loc[data.table["evaluation"] == e, "metric"].iloc[0]) for e in data.evaluations]
    headers = ["backbone", *(f"{e} ({m})" for e, m in zip(data.evaluations, metrics, strict=True)), "mean rank"]
    return Table("overall", "Overall: backbones × evaluations", headers, rows,
                 "mean ± std over seeds; 95 % bootstrap CI of the mean and number of seeds below; ★ best per column. "
                 "Each column is one task, split, protocol and setting: rows of different splits or precisions "
                 "are never pooled.")


FAMILY_HEADERS = ["task", "split", "backbone", "protocol", "options", "metric", "precision", "n", "mean", "std", "IQM",
                  "CI low", "CI high", "paper", "Δ paper", "data"]


def _paper_cell(r: pd.Series, unverified_mark: bool = True) -> Cell:
    """The published number on an exact match; on a near miss, say so (the reasons as a tooltip)."""
    if _missing(r["paper"]):
        if r["paper_note"]:
            return Cell(NO_PAPER, cls="nopaper", title=str(r["paper_note"]))
        return Cell(DASH)
    unverified = r["paper_verified"] != "yes"
    return Cell(fmt(r["paper"]) + (" †" if unverified and unverified_mark else ""), value=_number(r["paper"]),
                cls="unverified" if unverified else "")


def family_tables(data: ReportData) -> list[Table]:
    """One long table per task family, every statistic in its own column (easy to copy)."""
    tables = []
    best = {(e, b) for e in data.evaluations for b in data.ranks.index[data.ranks[e] == 1]} if data.evaluations else set()
    for family, part in data.table.groupby("family", sort=True):
        rows = []
        for _, r in part.sort_values(["task", "split", "protocol", "evaluation", "model"]).iterrows():
            star = (r["evaluation"], r["model"]) in best
            rows.append([
                Cell(str(r["task"])), Cell(str(r["split"])), Cell(str(r["model"]), cls="best" if star else ""),
                Cell(str(r["protocol"])), Cell(_options_text(str(r["options"]))), Cell(str(r["metric"])),
                Cell(str(r["precision"])), Cell(str(int(r["n"])), value=float(r["n"])),
                *(Cell(fmt(r[k]), value=_number(r[k])) for k in ("mean", "std", "iqm", "ci_low", "ci_high")),
                _paper_cell(r), Cell(fmt(r["delta"]), value=_number(r["delta"])),
                Cell("fixture" if r["fixture"] else "real", cls="fixture" if r["fixture"] else ""),
            ])
        tables.append(Table(f"family-{report_plots.slug(str(family))}", f"Family: {family}", FAMILY_HEADERS, rows,
                            f"paper: the published number where the run measured exactly its setting; "
                            f"“{NO_PAPER}” where a paper number exists for a neighbouring setting."))
    return tables


def paper_tables(data: ReportData) -> list[Table]:
    """Reproduced against published numbers (exact matches and near misses, with what differs),
    and every published number with its provenance."""
    tables = []
    near = data.table[data.table["paper_source"] != ""] if not data.table.empty else data.table
    rows = []
    for _, r in near.sort_values(["task", "split", "model"]).iterrows() if not near.empty else []:
        exact = not _missing(r["paper"])
        reasons = str(r["paper_note"]).partition(": ")[2]
        rows.append([Cell(str(r["task"])), Cell(str(r["split"])), Cell(str(r["model"])), Cell(str(r["protocol"])),
                     Cell(_options_text(str(r["options"]))), Cell(str(r["metric"])),
                     Cell(fmt(r["mean"]), value=_number(r["mean"])), _paper_cell(r, unverified_mark=False),
                     Cell(fmt(r["delta"]), value=_number(r["delta"])),
                     Cell("exact" if exact else reasons, cls="" if exact else "nopaper"),
                     Cell(str(r["paper_source"])),
                     Cell("yes" if r["paper_verified"] == "yes" else "no †",
                          cls="" if r["paper_verified"] == "yes" else "unverified")])
    n_exact = int(near["paper"].notna().sum()) if not near.empty else 0
    caption = ("A paper number is compared only when task, metric, preset, split, protocol and setting equal the "
               "run's, on real data with pretrained weights; otherwise the row says "
               f"“{NO_PAPER}” and what differs. {n_exact} of {len(rows)} rows compare exactly."
               if rows else "No reproduced number has a published number for its task and preset yet.")
    tables.append(Table("paper-compare", "Reproduced vs. paper",
                        ["task", "split", "backbone", "protocol", "options", "metric", "reproduced", "paper", "Δ",
                         "match", "source", "verified"], rows, caption))
    if data.paper is not None and not data.paper.empty:
        cols = [c for c in ("task", "backbone", "metric", "value", "split", "protocol", "setting", "source")
                if c in data.paper.columns]
        prow = [[*(Cell(str(r[c]), value=_number(r[c]) if c == "value" else None) for c in cols),
                 Cell("yes" if _verified(r) else "no †", cls="" if _verified(r) else "unverified")]
                for r in data.paper.to_dict("records")]
        tables.append(Table("paper-all", "Published numbers", [*cols, "verified"], prow,
                            "† unverified: copied from a re-report or note, not checked against the original paper."))
    return tables


def _distinct(values: pd.Series) -> str:
    return "; ".join(sorted({str(v) for v in values if str(v) != ""})) or DASH


def _scored(frame: pd.DataFrame) -> pd.Series:
    return (frame["status"] == "ok") & np.isfinite(frame["value"].astype(float))


def provenance_tables(data: ReportData) -> list[Table]:
    """What each number depends on: config hash, code, split, metric definition, environment."""
    ok = data.frame[data.frame["status"] == "ok"]
    envs = {v: f"env{i + 1}" for i, v in enumerate(sorted(set(ok["versions"].astype(str))))} if not ok.empty else {}
    rows = []
    keys = ["task", "backbone", "protocol", "options"]
    for key, part in (ok.groupby(keys, sort=True) if not ok.empty else []):
        rows.append([*(Cell(str(k)) for k in key[:3]), Cell(_options_text(str(key[3]))),
                     *(Cell(_distinct(part[c])) for c in ("split", "precision", "card", "config_hash", "git_sha",
                                                         "normalization", "adapter", "metric_definition",
                                                         "checkpoint_sha256", "fixture")),
                     Cell(", ".join(sorted({envs[str(v)] for v in part["versions"]})))])
    headers = ["task", "backbone", "protocol", "options", "split", "precision", "card", "config hash", "git sha",
               "normalization", "adapter", "metric definition", "checkpoint sha256", "fixture", "environment"]
    env_rows = []
    for versions, name in envs.items():
        try:
            text = ", ".join(f"{k} {v}" for k, v in sorted(json.loads(versions).items()))
        except (json.JSONDecodeError, AttributeError, TypeError):
            text = versions
        env_rows.append([Cell(name), Cell(text or DASH)])
    runs = [[Cell(str(r.get(c, ""))) for c in ("run_id", "timestamp", "backbone", "task", "split", "protocol")]
            + [Cell(str(r["seed"]), value=_number(r["seed"])), Cell(fmt(r["value"]), value=_number(r["value"])),
               Cell(str(r.get("wall_time_s", "")), value=_number(r.get("wall_time_s"))), Cell(str(r.get("device", "")))]
            for r in ok.to_dict("records")]
    return [Table("provenance", "Provenance", headers, rows),
            Table("environments", "Environments (package versions)", ["environment", "versions"], env_rows),
            Table("runs", "All successful runs", ["run id", "timestamp", "backbone", "task", "split", "protocol", "seed",
                                                  "value", "wall time (s)", "device"], runs)]


def problem_table(data: ReportData) -> Table:
    """Failed, skipped and unscored runs with their errors: a missing cell should never be silent."""
    frame = data.frame
    unscored = (frame["status"] == "ok") & ~_scored(frame)
    bad = frame[frame["status"].isin(["failed", "skipped"]) | unscored | ~frame["status"].isin(leaderboard.STATUSES)]
    rows = []
    for r in bad.to_dict("records"):
        status = str(r["status"]) if r["status"] != "ok" else "unscored"
        error = str(r.get("error", ""))
        if status == "unscored" and not error:
            error = ("no value: predictions only (e.g. a submission split, scored elsewhere)" if _missing(r["value"])
                     else f"value {r['value']} is not finite: left out of every mean")
        rows.append([Cell(status or "status missing", cls=status)]
                    + [Cell(str(r.get(c, ""))) for c in ("backbone", "task", "split", "protocol", "seed", "run_id",
                                                          "timestamp")]
                    + [Cell(error, cls="err")])
    return Table("problems", "Failed, skipped and unscored runs",
                 ["status", "backbone", "task", "split", "protocol", "seed", "run id", "timestamp", "error"], rows,
                 "" if rows else "None.")


def all_tables(data: ReportData) -> dict[str, list[Table]]:
    return {"overall": [overall_table(data)] if data.evaluations else [], "families": family_tables(data),
            "paper": paper_tables(data), "problems": [problem_table(data)], "provenance": provenance_tables(data)}


# -- rendering ------------------------------------------------------------------------------
def fixture_banner(data: ReportData) -> str:
    """Non-empty when any row ran on generated fixture data: such numbers must not be cited."""
    if data.frame.empty or "fixture" not in data.frame:
        return ""
    n = int((data.frame["fixture"].astype(str) == "True").sum())
    if not n:
        return ""
    return (f"Demonstration, not results: {n} of {len(data.frame)} leaderboard rows come from generated "
            "fixture data. Their numbers say the pipeline runs, not how good a backbone is.")


def _html_cell(cell: Cell, tag: str = "td") -> str:
    attrs = "" if _missing(cell.value) else f' data-value="{cell.value!r}"'
    attrs += f' class="{html.escape(cell.cls)}"' if cell.cls else ""
    attrs += f' title="{html.escape(cell.title)}"' if cell.title else ""
    body = f"<pre>{html.escape(cell.text)}</pre>" if cell.cls == "err" else html.escape(cell.text)
    note = f"<br><small>{html.escape(cell.note)}</small>" if cell.note else ""
    return f"<{tag}{attrs}>{body}{note}</{tag}>"


def html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.headers)
    body = "\n".join("<tr>" + "".join(_html_cell(c) for c in row) + "</tr>" for row in table.rows)
    caption = f'<p class="caption">{html.escape(table.caption)}</p>' if table.caption else ""
    if not table.rows:
        return f'<h3>{html.escape(table.title)}</h3>{caption}'
    tid = html.escape(table.id)
    return (f'<h3 id="h-{tid}">{html.escape(table.title)}</h3>{caption}'
            f'<input class="filter" type="search" placeholder="filter rows…" data-table="{tid}">'
            f'<div class="scroll"><table class="sortable" id="{tid}"><thead><tr>{head}</tr></thead>'
            f"<tbody>\n{body}\n</tbody></table></div>")


CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em auto;max-width:1400px;padding:0 1em;color:#222}
h1{margin-bottom:.2em} h2{border-bottom:1px solid #ccc;margin-top:2em}
.banner{background:#fff3cd;border:2px solid #e0a800;padding:.8em 1em;font-weight:600;margin:1em 0}
.scroll{overflow-x:auto} table{border-collapse:collapse;margin:.4em 0 1em}
th,td{border:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f4f4f4;cursor:pointer;user-select:none;white-space:nowrap}
th.asc::after{content:" ▲"} th.desc::after{content:" ▼"}
td.best{background:#e3f4e1;font-weight:600} td.unverified{color:#b35c00} td.fixture{color:#b35c00}
td.nopaper{color:#777;font-style:italic} td.failed{color:#c00;font-weight:600} td.skipped{color:#777;font-weight:600}
td pre{margin:0;white-space:pre-wrap;max-width:60em;font-size:12px}
small{color:#666} .caption{color:#555;margin:.2em 0} input.filter{margin:.2em 0;width:20em}
img{max-width:100%;border:1px solid #eee;margin:.3em} .plots{display:flex;flex-wrap:wrap;align-items:flex-start}
#js-errors{color:#c00}
"""

JS = r"""
(function () {
  var errors = [];
  function fail(msg) {
    errors.push(msg); document.body.setAttribute('data-js-errors', String(errors.length));
    var box = document.getElementById('js-errors'); if (box) box.textContent = 'JavaScript error: ' + errors.join(' | ');
  }
  window.addEventListener('error', function (e) { fail(String(e.message)); });
  function key(td) {
    var v = td.getAttribute('data-value');
    return v === null ? {n: false, v: td.textContent.trim().toLowerCase()} : {n: true, v: parseFloat(v)};
  }
  function sortBy(th) {
    var table = th.closest('table'), body = table.tBodies[0], col = th.cellIndex;
    var asc = !th.classList.contains('asc');
    table.querySelectorAll('th').forEach(function (h) { h.classList.remove('asc', 'desc'); });
    th.classList.add(asc ? 'asc' : 'desc');
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a.cells[col]), y = key(b.cells[col]), r;
      if (x.n && y.n) r = x.v - y.v; else if (x.n !== y.n) r = x.n ? -1 : 1; else r = x.v < y.v ? -1 : x.v > y.v ? 1 : 0;
      return asc ? r : -r;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  function filter(input) {
    var table = document.getElementById(input.getAttribute('data-table'));
    var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
    Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
      var text = row.textContent.toLowerCase();
      row.style.display = words.every(function (w) { return text.indexOf(w) >= 0; }) ? '' : 'none';
    });
  }
  document.querySelectorAll('table.sortable th').forEach(function (th) {
    th.addEventListener('click', function () { sortBy(th); });
  });
  document.querySelectorAll('input.filter').forEach(function (input) {
    input.addEventListener('input', function () { filter(input); });
  });
  function selftest() {
    // Exercised by the headless-browser test: sort and filter every table, then report.
    document.querySelectorAll('table.sortable').forEach(function (table) {
      var rows = table.tBodies[0].rows; if (rows.length < 2) return;
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
        sortBy(th); var first = key(rows[0].cells[th.cellIndex]), last = key(rows[rows.length - 1].cells[th.cellIndex]);
        if (first.n && last.n && first.v > last.v) fail('unsorted ' + table.id + ' column ' + th.cellIndex);
      });
      var input = document.querySelector('input.filter[data-table="' + table.id + '"]');
      input.value = rows[0].cells[0].textContent.trim(); filter(input);
      var shown = Array.prototype.filter.call(rows, function (r) { return r.style.display !== 'none'; }).length;
      if (shown < 1) fail('filter hid every row of ' + table.id);
      input.value = ''; filter(input);
    });
    document.body.setAttribute('data-selftest', errors.length ? 'fail' : 'ok');
  }
  try { if (location.hash === '#selftest') selftest(); } catch (e) { fail(String(e)); }
  document.body.setAttribute('data-js-ready', errors.length ? 'errors' : 'ok');
})();
"""

SECTION_TITLES = {"overall": "Overall", "families": "Per family", "paper": "Paper comparison",
                  "problems": "Failed, skipped and unscored runs", "provenance": "Provenance"}


def render_html(data: ReportData, tables: dict[str, list[Table]], plots: dict[str, Path], out_dir: Path) -> str:
    def img(key: str, alt: str) -> str:
        path = plots.get(key)
        return f'<img src="{html.escape(path.relative_to(out_dir).as_posix())}" alt="{html.escape(alt)}">' if path else ""

    banner = fixture_banner(data)
    parts = ['<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>rsbench report</title><style>{CSS}</style></head><body>",
             "<h1>rsbench leaderboard report</h1>", '<div id="js-errors"></div>']
    if banner:
        parts.append(f'<div class="banner" id="fixture-banner">{html.escape(banner)}</div>')
    counts = data.frame["status"].value_counts().to_dict() if not data.frame.empty else {}
    parts.append(f"<p>{len(data.frame)} runs ({html.escape(', '.join(f'{v} {k}' for k, v in sorted(counts.items())) or 'none')}); "
                 f"{len(data.evaluations)} evaluations; {len(data.means.index)} backbones.</p>")
    if not data.evaluations:
        parts.append("<p>No successful run yet: nothing to rank.</p>")
    for section, items in tables.items():
        parts.append(f'<h2 id="sec-{section}">{SECTION_TITLES[section]}</h2>')
        if section == "overall" and data.evaluations:
            parts.append('<div class="plots">' + img("heatmap", "normalized scores") + img("ranks", "ranks") + "</div>")
        parts.extend(html_table(t) for t in items)
        if section == "overall":
            bars = [img(k, k[5:]) for k in sorted(plots) if k.startswith("bars:")]
            parts.append('<div class="plots">' + "".join(bars) + "</div>")
        if section == "paper":
            parts.append(img("paper_scatter", "reproduced vs paper"))
    parts.append(f"<script>{JS}</script></body></html>")
    return "\n".join(parts)


def _md_cell(cell: Cell) -> str:
    text = cell.text + (f" ({cell.note})" if cell.note else "")
    text = html.escape(text, quote=False).replace("\\", "\\\\").replace("|", "\\|").replace("\r", "")
    text = text.replace("\n", "<br>")  # Markdown renders entities, never the raw HTML a value may hold
    return f"**{text}**" if cell.cls == "best" and text else text


def markdown_table(table: Table) -> str:
    lines = [f"### {table.title}", ""]
    if table.caption:
        lines += [table.caption, ""]
    if table.rows:
        lines.append("| " + " | ".join(_md_cell(Cell(h)) for h in table.headers) + " |")
        lines.append("|" + "|".join("---" for _ in table.headers) + "|")
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table.rows]
        lines.append("")
    return "\n".join(lines)


def render_markdown(data: ReportData, tables: dict[str, list[Table]]) -> str:
    banner = fixture_banner(data)
    lines = ["# rsbench leaderboard report", ""] + ([f"> **{banner}**", ""] if banner else [])
    for section, items in tables.items():
        lines += [f"## {SECTION_TITLES[section]}", ""] + [markdown_table(t) for t in items]
    return "\n".join(lines).rstrip() + "\n"


def write_plots(data: ReportData, out_dir: Path) -> dict[str, Path]:
    for stale in [*out_dir.glob("bars_*.png"), *(out_dir / n for n in PLOT_NAMES)]:
        stale.unlink(missing_ok=True)  # a plot of an evaluation that no longer exists would mislead
    plots = report_plots.bar_charts(data.table, out_dir) if data.evaluations else {}
    optional = {"heatmap": report_plots.heatmap(data.normalized, out_dir / "heatmap.png"),
                "ranks": report_plots.rank_plot(data.ranks, out_dir / "ranks.png")}
    if data.evaluations:
        pairs = data.table[data.table["paper"].notna()]  # exact matches only: a near miss is no comparison
        pairs = pairs.assign(verified=pairs["paper_verified"] == "yes", label=pairs["model"] + "/" + pairs["task"])
        optional["paper_scatter"] = report_plots.paper_scatter(pairs, out_dir / "paper_scatter.png")
    plots.update({k: v for k, v in optional.items() if v is not None})
    return plots


def write_report(results_dir: Path, out_dir: Path) -> dict[str, Path]:
    """Write ``index.html``, ``report.md`` and the PNG plots; return every path by name."""
    results_dir, out_dir = Path(results_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = collect(results_dir)
    tables = all_tables(data)
    plots = write_plots(data, out_dir)
    written = {"html": out_dir / "index.html", "markdown": out_dir / "report.md"}
    written["html"].write_text(render_html(data, tables, plots, out_dir), encoding="utf-8")
    written["markdown"].write_text(render_markdown(data, tables), encoding="utf-8")
    return {**written, **plots}
