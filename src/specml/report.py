"""A model card: one self-contained HTML page per trained model (``specml report``).

Sections: summary (task, target, table), data (rows, split, fingerprint, features), specs (the exact
files of the run), training (best and final metrics, the curves), evaluations (every stored evaluation:
metrics, confusion matrix, figures), lineage (registry runs and evaluations) and environment (library
versions, device, seed). Figures are embedded as ``data:`` URIs, so the page is one file that opens
anywhere. Nothing here imports torch.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from specml.artifact import ModelArtifact
from specml.evaluation import stored_reports

SECTIONS = ("summary", "data", "specs", "training", "evaluation", "lineage", "environment")
STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{border-bottom:2px solid #446}h2{margin-top:2em;color:#335}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#eef}td.num{text-align:right;font-variant-numeric:tabular-nums}
pre{background:#f6f6f9;padding:.8em;overflow:auto;font-size:90%}
figure{display:inline-block;margin:.5em;vertical-align:top}figure img{max-width:480px;border:1px solid #ddd}
figcaption{font-size:85%;color:#555}.warn{color:#a40}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "n/a" if value is None else _e(value)


def _table(rows: list[tuple[Any, ...]], header: tuple[str, ...] | None = None) -> str:
    head = "<tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr>" if header else ""
    body = "".join("<tr>" + "".join(f"<td class='num'>{_num(c)}</td>" if isinstance(c, (int, float)) and
                                    not isinstance(c, bool) else f"<td>{_e(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table>{head}{body}</table>"


def _figure(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f"<figure><img alt='{_e(caption)}' src='data:image/png;base64,{data}'>"
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _figures(folder: Path | None, prefix: str = "") -> str:
    if folder is None or not folder.is_dir():
        return ""
    return "".join(_figure(p, prefix + p.stem.replace("_", " ")) for p in sorted(folder.glob("*.png")))


def _section(key: str, title: str, body: str) -> str:
    return f"<section id='{key}'><h2>{_e(title)}</h2>{body or '<p>nothing recorded</p>'}</section>"


def _confusion(report: dict) -> str:
    matrix, classes = report.get("confusion_matrix"), report.get("classes")
    if not matrix or not classes:
        return ""
    support = report.get("support") or {}
    rows = [(f"true {c}", *row, support.get(str(c), sum(row))) for c, row in zip(classes, matrix, strict=False)]
    said = f"<p>threshold {report['threshold']:g}</p>" if report.get("threshold") is not None else ""
    return said + _table(rows, ("", *(f"predicted {c}" for c in classes), "support"))


def _lineage(name: str, home: Any) -> dict | None:
    try:
        from specml.track.registry import Registry

        return Registry(home=home).lineage(name)
    except Exception:  # noqa: BLE001 - a page without lineage beats no page
        return None


def build(name: str, home: str | Path | None = None) -> str:
    """The model card of ``name`` as one HTML document."""
    artifact = ModelArtifact.for_name(name, home)
    meta = artifact.read_metadata()
    run_dir = artifact.run_dir
    classical = meta.get("kind") == "classical"
    target = meta.get("target")
    title = f"{name}: {meta.get('task')} model of {target if isinstance(target, str) else ', '.join(target or [])}"

    summary = _table([("model", name), ("kind", "classical" if classical else "neural network"),
                      ("task", meta.get("task")), ("target", json.dumps(target)),
                      ("trained on table", meta.get("table")),
                      ("created", meta.get("created_at")), ("updated", meta.get("updated_at")),
                      ("directory", artifact.directory)])

    rows = meta.get("rows") or {}
    features = (meta.get("features") or {}).get("columns") if classical else \
        [c for cols in (meta.get("inputs") or {}).values() for c in cols or []]
    data = _table([(k, v) for k, v in rows.items()], ("rows", "count"))
    lineage_meta = meta.get("lineage") or {}
    if lineage_meta.get("data_fingerprint"):
        data += f"<p>table fingerprint at training: <code>{_e(lineage_meta['data_fingerprint'])}</code></p>"
    if features:
        data += f"<p>{len(features)} feature column(s): {_e(', '.join(map(str, features)))}</p>"
    if meta.get("split"):
        data += _table([(k, v) for k, v in meta["split"].items()], ("split", "value"))

    spec_files = []
    for folder in [run_dir / "specs" if run_dir else None, artifact.directory]:
        if folder is not None and folder.is_dir():
            spec_files += [p for p in sorted(folder.glob("*.yaml")) if p.name not in {s.name for s in spec_files}]
    specs = "".join(f"<h3>{_e(p.name)}</h3><pre>{_e(p.read_text(encoding='utf-8'))}</pre>" for p in spec_files)

    metrics = meta.get("metrics") or {}
    if classical:
        training = _table([(split, k, v) for split, values in metrics.items() if isinstance(values, dict)
                           for k, v in values.items() if isinstance(v, (int, float))], ("split", "metric", "value"))
    else:
        best, final = metrics.get("best") or {}, metrics.get("final") or {}
        training = _table([(k, best.get(k), final.get(k)) for k in best], ("metric", "best epoch", "last epoch"))
        epochs = meta.get("epochs") or {}
        training += (f"<p>best epoch {_e(metrics.get('best_epoch'))} of {_e(epochs.get('run'))} run "
                     f"({_e(epochs.get('planned'))} planned)</p>")
    if meta.get("threshold"):
        t = meta["threshold"]
        training += (f"<p>decision threshold chosen on {_e(t.get('rows'))} validation rows: F1 "
                     f"{_num(t.get('value'))}, Youden {_num(t.get('youden'))}</p>")
    training += _figures(run_dir / "figures" if run_dir else artifact.directory / "figures")

    evaluation = ""
    for report in stored_reports(artifact.directory):
        table = report.get("table")
        evaluation += f"<h3>on table {_e(table)} ({_e(report.get('rows'))} rows)</h3>"
        seen = report.get("seen") or {}
        if seen.get("seen"):
            evaluation += (f"<p class='warn'>{_e(seen['seen'])} of these rows are rows the model trained or "
                           f"validated on (table {_e(seen.get('training_table'))}): optimistic metrics</p>")
        evaluation += _table([(k, v) for k, v in (report.get("metrics") or {}).items()], ("metric", "value"))
        evaluation += _confusion(report)
        from specml.home import slug

        base = run_dir / "figures" if run_dir else artifact.directory / "figures"
        evaluation += _figures(base / f"evaluate_{slug(str(table))}", f"{table}: ")

    lineage = _lineage(name, home)
    lineage_html = ""
    if lineage:
        runs = lineage.get("runs") or []
        lineage_html += _table([(r.get("run_id"), r.get("status"), r.get("table_name"), r.get("data_rows"),
                                 r.get("data_hash"), r.get("model_spec_name") or "(file)",
                                 (r.get("model_spec_hash") or "")[:12], r.get("started_at"))
                                for r in runs],
                               ("run", "status", "table", "rows", "fingerprint", "model spec", "sha256", "started"))
        evals = lineage.get("evaluations") or []
        if evals:
            lineage_html += _table([(e.get("table_name"), e.get("rows"), e.get("created_at")) for e in evals],
                                   ("evaluated on", "rows", "when"))
    elif lineage_meta:
        lineage_html = _table([(k, v) for k, v in lineage_meta.items()], ("lineage", "value"))
    if run_dir:
        lineage_html += f"<p>run directory: <code>{_e(run_dir)}</code></p>"

    env_rows = [(k, v) for k, v in (meta.get("versions") or {}).items()]
    env_rows += [(k, meta[k]) for k in ("device", "seed", "split_seed") if meta.get(k) is not None]
    environment = _table(env_rows, ("what", "value"))

    bodies = {"summary": ("Summary", summary), "data": ("Data", data), "specs": ("Specs", specs),
              "training": ("Training", training), "evaluation": ("Evaluation", evaluation),
              "lineage": ("Lineage", lineage_html), "environment": ("Environment", environment)}
    nav = " · ".join(f"<a href='#{k}'>{_e(bodies[k][0])}</a>" for k in SECTIONS)
    content = "".join(_section(k, *bodies[k]) for k in SECTIONS)
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{_e(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{_e(title)}</h1><nav>{nav}</nav>{content}</body></html>\n")


def check_output(output: str | Path | None, replace: bool = False) -> None:
    """An explicit ``--output`` is a file that is not there yet (or ``replace``); never a directory. The
    default page (``models/<name>/report.html``) is specml's own and is always rewritten."""
    from specml.errors import SpecmlError

    if output is None:
        return
    path = Path(output)
    if path.is_dir():
        raise SpecmlError(f"--output {path} is a directory; name an .html file")
    if path.exists() and not replace:
        raise SpecmlError(f"--output {path} already exists; pass --replace to overwrite it")


def write(name: str, output: str | Path | None = None, home: str | Path | None = None, *,
          replace: bool = False) -> Path:
    """Write the model card (default: ``models/<name>/report.html``); return its path. An existing
    ``output`` is replaced only with ``replace``."""
    from specml.data.files import atomic_write_text

    check_output(output, replace)
    path = Path(output) if output is not None else ModelArtifact.for_name(name, home).directory / "report.html"
    atomic_write_text(path, build(name, home))
    return path
