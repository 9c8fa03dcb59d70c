"""index.html: static markup (readable without JavaScript); report.js adds filters, sort and synced playback."""
from __future__ import annotations

from collections.abc import Iterable
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from cosmoskit_report.build import PromptView, Report, RunView
    from cosmoskit_report.media import Job

STATUS_ORDER = ("completed", "failed", "cancelled", "running", "fetching", "staging", "queued")
OPERATIONS = ("transfer", "upscale", "enhance")
INPUT_ORDER = ("rgb", "vis", "edge", "depth", "seg", "keypoint")


def e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def fmt_num(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} m {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} m"


def fmt_gpu(seconds: float) -> str:
    hours = seconds / 3600
    text = f"{hours:.2f} GPU h" if hours >= 0.01 else f"{hours:.4f} GPU h"
    return text if hours >= 1 else f"{text} <span class=dim>({fmt_seconds(seconds)})</span>"


def stars(rating: Any) -> str:
    if not rating:
        return '<span class="stars unrated" title="not rated">unrated</span>'
    n = max(0, min(5, int(rating)))
    return f'<span class="stars" title="rated {n}/5">{"★" * n}<span class=off>{"★" * (5 - n)}</span></span>'


def url(rel: str) -> str:
    return e(quote(rel))


# ------------------------------------------------------------------ media
def video(job: Job | None, *, label: str, cls: str = "") -> str:
    """A playable preview (its thumbnail until played), or a plain notice when there is nothing to play."""
    if job is None:
        return f'<div class="frame nofile {cls}"><span>no file</span></div>'
    if job.state == "missing":
        return (f'<div class="frame missing {cls}" data-missing="{e(job.src)}"><span class="big">output missing</span>'
                f'<code>{e(job.src)}</code></div>')
    if job.state == "failed" or not job.files:
        return (f'<div class="frame broken {cls}"><span class="big">cannot preview</span>'
                f'<code>{e(job.error)}</code></div>')
    f = job.files
    # A thumbnail that report.js turns into a looping <video> in place when played: a page of a thousand
    # <video> elements is slow to open, a thousand lazy images is not.  Without JavaScript the link opens the preview.
    return (f'<div class="frame {cls}"><a class="playable" href="{url(f["preview"])}" data-video="{url(f["preview"])}" '
            f'title="play ({e(label)})"><img class="poster" src="{url(f["thumb"])}" alt="{e(label)}" loading="lazy" '
            f'decoding="async"><span class="playmark" aria-hidden="true">▶</span></a></div>')


def sheet(job: Job | None) -> str:
    if job is None or not job.files:
        return ""
    return f'<img class="sheet" src="{url(job.files["sheet"])}" alt="contact sheet" loading="lazy">'


# ------------------------------------------------------------------ runs
def weights_of(view: RunView, by_id: dict[str, RunView]) -> dict[str, float]:
    params = view.run.get("params") or {}
    weights = params.get("weights")
    if not weights and view.run.get("operation") == "upscale":
        source = by_id.get(view.run.get("parent_run") or "")
        if source is not None:
            weights = (source.run.get("params") or {}).get("weights")
    return {k: float(v) for k, v in (weights or {}).items() if isinstance(v, (int, float))}


def run_card(view: RunView, by_id: dict[str, RunView], *, role: str = "") -> str:
    run = view.run
    rid, status, op = run["id"], run["status"], run.get("operation") or "?"
    params = run.get("params") or {}
    weights = weights_of(view, by_id)
    classes = ["run", f"st-{status}", f"op-{op}"]
    if view.emulator:
        classes.append("emu")
    missing = view.main_missing or (view.main is not None and view.main.state == "missing")
    if missing:
        classes.append("is-missing")
    data = {
        "id": rid, "status": status, "op": op, "created": run.get("created") or "",
        "rating": run.get("rating") or 0, "duration": f"{view.duration:.3f}" if view.duration is not None else "",
        "w": " ".join(f"{k}:{v:g}" for k, v in weights.items()),
        "has-weights": "1" if weights or op == "transfer" else "",
        "text": " ".join(filter(None, [rid, op, status, run.get("sweep"), run.get("reason"),
                                       run.get("error")])).lower(),
        "sweep": run.get("sweep") or "",
    }
    attrs = " ".join(f'data-{k}="{e(v)}"' for k, v in data.items())
    out = [f'<article class="{" ".join(classes)}" id="r-{e(rid)}" {attrs}>']
    # the picture
    tags = [f'<span class="tag st">{e(status)}</span>']
    if view.emulator:
        what = "emulator output" if status == "completed" else "emulator run"
        tags.append(f'<span class="tag emu" title="made by the CPU emulator (cosmos-emulator), not by the model">'
                    f'{what}</span>')
    if role:
        tags.append(f'<span class="tag role">{e(role)}</span>')
    if status == "failed":
        reason = run.get("reason") or "failed"
        body = (f'<div class="frame failed"><span class="big">✕ {e(reason)}</span>'
                f'<p class="err">{e(run.get("error") or "no error recorded")}</p></div>')
    elif view.text_output is not None or (missing and (view.main_name or "").endswith(".txt")):
        if missing:
            body = (f'<div class="frame missing" data-missing="{e(view.main_name)}">'
                    '<span class="big">output missing</span>'
                    f'<code>{e(view.main_name)}</code></div>')
        else:
            result = run.get("result_prompt")
            go = f' <a href="#p-{e(result)}">→ {e(result)}</a>' if result else ""
            body = (f'<div class="frame textout"><span><span class="label">enhanced prompt</span>{go}</span>'
                    f'<p>{e(view.text_output)}</p></div>')
    elif view.main is not None:
        body = video(view.main, label=f"{op} {rid}")
    elif status in ("completed",):
        body = '<div class="frame missing"><span class="big">output missing</span><code>no output recorded</code></div>'
    else:
        body = f'<div class="frame pending"><span class="big">{e(status)}</span></div>'
    out.append(f'<div class="pic">{body}<div class="tags">{"".join(tags)}</div></div>')
    if view.main is not None and status != "failed":
        out.append(sheet(view.main))
    if view.controls:
        minis = "".join(f'<figure class="mini">{video(job, label=f"{hint} control", cls="small")}'
                        f'<figcaption><a href="{e(href)}">{e(hint)} control</a></figcaption></figure>'
                        for hint, job, href in view.controls)
        out.append(f'<div class="ctrls" title="control videos the model generated">{minis}</div>')
    # the facts
    out.append('<div class="meta">')
    out.append(f'<div class="line1"><span class="op">{e(op)}</span><code class="rid">{e(rid)}</code>'
               f'{stars(run.get("rating"))}</div>')
    if weights:
        inherited = not (params.get("weights")) and op == "upscale"
        rows = "".join(f'<div class="w"><span class="wk">{e(k)}</span>'
                       f'<span class="bar"><i style="width:{min(1, max(0, v)) * 100:.0f}%"></i></span>'
                       f'<span class="wv">{v:.2f}</span></div>' for k, v in weights.items())
        extra = ' inherited" title="weights of its source run' if inherited else ""
        out.append(f'<div class="weights{extra}">{rows}</div>')
    facts = []
    if op == "upscale":
        if params.get("control_weight") is not None:
            facts.append(f"upscale weight {fmt_num(params.get('control_weight'))}")
        if view.run.get("parent_run"):
            facts.append(f'of <a href="#r-{e(view.run["parent_run"])}">{e(view.run["parent_run"])}</a>')
    if params.get("num_steps") is not None:
        facts.append(f"{e(params['num_steps'])} steps")
    if params.get("guidance") is not None:
        facts.append(f"guidance {e(fmt_num(params['guidance']))}")
    if params.get("seed") is not None:
        facts.append(f"seed {e(params['seed'])}")
    if run.get("sweep"):
        facts.append(f'<span class="sweep" title="the runs of one command or drop folder sit side by side">'
                     f'sweep {e(run["sweep"])}</span>')
    if view.duration is not None:
        batch = f' <span class=dim>(batch of {view.batch_size})</span>' if view.batch_size > 1 else ""
        facts.append(f"{fmt_seconds(view.duration)}{batch}")
    if facts:
        out.append(f'<div class="facts">{" · ".join(facts)}</div>')
    links = []
    if view.main_link and not missing:
        links.append(f'<a href="{e(view.main_link)}">'
                     f'full {"text" if (view.main_name or "").endswith(".txt") else "video"}</a>')
    if view.log_link:
        links.append(f'<a class="log" href="{e(view.log_link)}">log</a>')
    when = (run.get("finished") or run.get("created") or "")[:16].replace("T", " ")
    if when:
        links.append(f'<span class="dim">{e(when)}</span>')
    out.append(f'<div class="links">{" · ".join(links)}</div>')
    if view.log_tail:
        out.append('<details class="logtail"><summary>last lines of the log</summary>'
                   f'<pre>{e(view.log_tail)}</pre></details>')
    out.append("</div></article>")
    return "".join(out)


def unit(view: RunView, by_id: dict[str, RunView]) -> str:
    """A run with its upscales beside it; sorting and filtering move it as one."""
    cards = [run_card(view, by_id)]
    cards += [run_card(up, by_id, role=f"upscale of {view.id}") for up in reversed(view.upscales)]
    wide = f' style="grid-column: span {min(2, len(cards))}"' if len(cards) > 1 else ""
    return f'<div class="unit{" pair" if len(cards) > 1 else ""}"{wide}>{"".join(cards)}</div>'


# ------------------------------------------------------------------ prompts
def input_tile(key: str, job: Job | None, record: dict[str, Any]) -> str:
    path = record.get("path") or ""
    size = f'{record.get("width")}×{record.get("height")}' if record.get("width") else ""
    info = " · ".join(filter(None, [size, f'{record.get("frames")} frames' if record.get("frames") else "",
                                    f'{fmt_num(record.get("fps"))} fps' if record.get("fps") else ""]))
    name = "input video" if key == "rgb" else f"{key} control"
    return (f'<figure class="input" data-input="{e(key)}">{video(job, label=name)}{sheet(job)}'
            f'<figcaption><b>{e(name)}</b> <span class="dim">{e(info)}</span>'
            f'<br><code title="{e(path)}">{e(Path(path).name)}</code></figcaption></figure>')


def section(s: PromptView, by_id: dict[str, RunView], prompts: dict[str, dict[str, Any]], depth: int = 0) -> str:
    p = s.prompt
    out = []
    if p is None:
        out.append('<section class="prompt loose" id="p-no-prompt" data-prompt="" data-text="">'
                   '<header class="phead"><div><h2>Videos without a prompt</h2>'
                   '<span class="dim">upscales of files given with --video</span></div>'
                   '<button type="button" class="play" data-play>▶ play side by side</button></header>')
    else:
        pid = p["id"]
        text = p.get("text") or ""
        search = " ".join([pid, p.get("name") or "", text]).lower()
        cls = "prompt child" if depth else "prompt"
        out.append(f'<section class="{cls}" id="p-{e(pid)}" data-prompt="{e(pid)}" data-text="{e(search)}">')
        size = (f'{p.get("width")}×{p.get("height")} · {p.get("frames")} frames @ {fmt_num(p.get("fps"))} fps'
                if p.get("width") else "")
        emu = '<span class="tag emu">emulator output</span>' if s.emulator else ""
        out.append(f'<header class="phead"><div><h2>{e(p.get("name") or pid)}</h2> <code>{e(pid)}</code> '
                   f'<span class="dim">{e(size)}</span> {emu}</div>'
                   '<button type="button" class="play" data-play '
                   'title="play the inputs and every output together, in sync">▶ play side by side</button></header>')
        parent = prompts.get(p.get("parent_prompt") or "")
        if parent is not None:
            out.append(f'<div class="lineage"><div class="was"><span class="label">original · '
                       f'<a href="#p-{e(parent["id"])}">{e(parent.get("name") or parent["id"])}</a></span>'
                       f'<p>{e(parent.get("text"))}</p></div>'
                       f'<div class="now"><span class="label">enhanced</span><p>{e(text)}</p></div></div>')
        else:
            out.append(f'<p class="ptext">{e(text)}</p>')
            if p.get("negative_prompt"):
                out.append(f'<p class="neg"><span class="label">negative</span> {e(p["negative_prompt"])}</p>')
    inputs = sorted(s.inputs, key=lambda t: (INPUT_ORDER.index(t[0]) if t[0] in INPUT_ORDER else 99, t[0]))
    if inputs:
        out.append('<div class="pbody"><div class="inputs">'
                   + "".join(input_tile(k, j, r) for k, j, r in inputs) + "</div>")
    else:
        out.append('<div class="pbody noinputs">')
    units = "".join(unit(v, by_id) for v in s.units)
    empty = '<p class="empty">no runs</p>' if not s.units else ""
    out.append(f'<div class="runs">{units}{empty}</div></div>')
    if s.children:
        out.append('<div class="children">'
                   + "".join(section(c, by_id, prompts, depth + 1) for c in s.children) + "</div>")
    out.append("</section>")
    return "".join(out)


# ------------------------------------------------------------------ summary and filters
def summary_block(report: Report) -> str:
    sm = report.summary
    chips = "".join(f'<a class="chip st-{e(k)}" href="#status={e(k)}"><b>{v}</b> {e(k)}</a>'
                    for k, v in sorted(sm["by_status"].items(), key=lambda kv: _order(kv[0], STATUS_ORDER)))
    rows = "".join(f'<tr><td>{e(op)}</td><td>{fmt_num(row["batches"])}</td><td>{row["runs"]}</td>'
                   f'<td>{fmt_gpu(row["gpu_seconds"])}</td></tr>' for op, row in sm["gpu"].items())
    gpu = ('<table class="gpu"><thead><tr><th>operation</th><th>batches</th><th>runs</th><th>GPU time</th></tr></thead>'
           f'<tbody>{rows}</tbody><tfoot><tr><td>total</td><td></td><td></td>'
           f'<td>{fmt_gpu(sm["gpu_seconds"])}</td></tr></tfoot></table>'
           if sm["gpu"] else '<p class="dim">no finished batch yet</p>')
    if sm["running_batches"]:
        gpu += f'<p class="dim">{sm["running_batches"]} batch(es) still running, not counted</p>'
    if sm["speedup"] is not None:
        per = f'{sm["mean_runs_per_batch"]:.1f} runs per model load · ' if sm.get("mean_runs_per_batch") else ""
        speed = (f'<div class="big">{sm["speedup"]:.2f}×</div>'
                 f'<p class="dim">{per}one run at a time ≈ {fmt_gpu(sm["one_at_a_time_seconds"])}, '
                 f'spent {fmt_gpu(sm["gpu_seconds"])}</p>'
                 '<p class="dim small">measured batch times, scaled by the cost model\'s load savings '
                 '(docs/report.md)</p>')
    else:
        speed = '<div class="big">—</div><p class="dim">no finished batch yet</p>'
    emu = ""
    if sm.get("emulator_runs"):
        emu = (f'<div class="banner emu">⚠ {sm["emulator_runs"]} run(s) here are <b>emulator output</b>: made by the '
               f'CPU stand-in (cosmos-emulator), not by Cosmos Transfer. They show the pipeline, not the model.</div>')
    return (f'{emu}<section class="summary">'
            f'<div class="stat"><h3>Runs</h3><div class="big">{sm["runs"]}</div><div class="chips">{chips}</div></div>'
            f'<div class="stat"><h3>GPU time by operation</h3>{gpu}</div>'
            f'<div class="stat"><h3>Batching speed-up</h3>{speed}</div></section>')


def _order(value: str, order: Iterable[str]) -> tuple[int, str]:
    order = tuple(order)
    return (order.index(value) if value in order else len(order), value)


def filters_block(report: Report) -> str:
    runs = [v.run for v in report.runs]
    statuses = sorted({r["status"] for r in runs}, key=lambda s: _order(s, STATUS_ORDER))
    ops = sorted({r.get("operation") or "?" for r in runs}, key=lambda s: _order(s, OPERATIONS))
    count = lambda field, value: sum(1 for r in runs if (r.get(field) or "?") == value)  # noqa: E731
    status_boxes = "".join(f'<label class="st-{e(s)}"><input type="checkbox" name="status" value="{e(s)}" checked> '
                           f'{e(s)} <b>{count("status", s)}</b></label>' for s in statuses)
    op_boxes = "".join(f'<label><input type="checkbox" name="op" value="{e(o)}" checked> {e(o)} '
                       f'<b>{count("operation", o)}</b></label>' for o in ops)
    weights = "".join(f'<label class="wr"><span>{e(c)}</span>'
                      f'<input type="number" name="w.{e(c)}.min" min="0" max="1" step="0.05" placeholder="0" '
                      f'aria-label="{e(c)} from">'
                      f'–<input type="number" name="w.{e(c)}.max" min="0" max="1" step="0.05" placeholder="1" '
                      f'aria-label="{e(c)} to"></label>'
                      for c in report.controls)
    sort_opts = [("newest", "newest first"), ("oldest", "oldest first"), ("rating", "best rated"),
                 ("duration", "longest"), ("status", "status")]
    sort_opts += [(f"w.{c}", f"{c} weight") for c in report.controls]
    sorts = "".join(f'<option value="{e(v)}">{e(t)}</option>' for v, t in sort_opts)
    ratings = '<option value="">any</option>' + "".join(f'<option value="{n}">{"★" * n}{"+" if n < 5 else ""}</option>'
                                                        for n in range(1, 6))
    ratings += '<option value="unrated">unrated</option>'
    return (
        '<form class="filters" id="filters" autocomplete="off" onsubmit="return false">'
        f'<fieldset><legend>Status</legend>{status_boxes or "<span class=dim>—</span>"}</fieldset>'
        f'<fieldset><legend>Operation</legend>{op_boxes or "<span class=dim>—</span>"}</fieldset>'
        + (f'<fieldset class="wf"><legend>Control weight</legend>{weights}</fieldset>' if weights else "")
        + f'<fieldset><legend>Rating</legend><select name="rating">{ratings}</select></fieldset>'
        f'<fieldset><legend>Sort</legend><select name="sort">{sorts}</select></fieldset>'
        '<fieldset class="grow"><legend>Search</legend>'
        '<input type="search" name="q" placeholder="prompt text, run id, error…"></fieldset>'
        '<fieldset><legend>View</legend><label><input type="checkbox" name="sheets" checked> contact sheets</label>'
        '<label><input type="checkbox" name="autoplay"> play in view</label></fieldset>'
        f'<div class="fend"><output id="shown" aria-live="polite">{len(runs)} of {len(runs)} runs</output>'
        '<button type="button" id="reset">reset</button></div>'
        '</form>'
    )


def page(report: Report) -> str:
    by_id = {v.id: v for v in report.runs}
    prompts: dict[str, dict[str, Any]] = {}

    def collect(sections: list[PromptView]) -> None:
        for s in sections:
            if s.prompt is not None:
                prompts[s.prompt["id"]] = s.prompt
            collect(s.children)

    collect(report.sections)
    # report.prompts: every prompt, so an enhanced prompt names its parent even when that is not shown
    title = f"cosmoskit report — {report.home.name}"
    applied = [f"{k} {', '.join(v) if isinstance(v, list) else v}" for k, v in (report.filters or {}).items() if v]
    sub = (f'{e(report.home)} · generated {e(report.generated[:19].replace("T", " "))} UTC'
           + (f' · only {e("; ".join(applied))}' if applied else ""))
    body = "".join(section(s, by_id, {**report.prompts, **prompts}) for s in report.sections)
    if not report.sections:
        body = '<p class="empty big">Nothing to show: no prompt or run matches.</p>'
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)}</title>"
        '<meta name="generator" content="cosmoskit report">'
        '<link rel="stylesheet" href="report.css"></head>'
        f'<body data-controls="{e(" ".join(report.controls))}" data-runs="{len(report.runs)}">'
        f'<header class="top"><h1><span class="logo">◧</span> cosmoskit report</h1><p class="sub">{sub}</p></header>'
        f"{summary_block(report)}{filters_block(report)}"
        f'<main id="gallery">{body}</main>'
        '<footer class="foot">Made by <code>cosmoskit report</code>. Previews are short, small re-encodes; '
        '“full video” opens the original file. '
        'Click a video (or ▶) to play a prompt\'s videos together, in sync.</footer>'
        '<script src="report.js"></script></body></html>\n'
    )
