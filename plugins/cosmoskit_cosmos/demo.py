"""``cosmoskit demo``: the whole main job on this machine, through the CPU emulator.

Transfer 1 runs a batch of the three prompts; every other transfer model that is loaded and names its
``demo_weights`` (Transfer 2.5, Cosmos 3 Nano and Super) runs a batch of the same prompts, so the
table and the report show the models side by side.  Leaving a model plugin out leaves its batch out."""
from __future__ import annotations

from pathlib import Path
from typing import Any

DEMO_CONFIG = """\
# cosmoskit demo project (made by `cosmoskit demo`).
# Runs go to the local executor and the CPU EMULATOR of Cosmos Transfer: the videos
# it makes are labelled "COSMOS EMULATOR" and are not model outputs.
default_executor: local
model:
  runtime: emulator
emulator:
  load_seconds: 1.0
  load_seconds_per_control: 0.2
  seconds_per_chunk: 0.3
  control_factor: 0.35
# The planner is told the emulator's speed (a real project calibrates: `cosmoskit calibrate --apply`),
# so it batches for the machine that runs here.
batching:
  cost:
    load_base_seconds: 1.0
    load_per_control_seconds: 0.2
    chunk_seconds_per_step: 0.00857
    chunk_control_factor: 0.35
transfer:
  num_steps: 35
  guidance: 7.0
"""

SCENE = "warehouse"
PROMPTS = [
    "A forklift crosses a sunlit warehouse aisle lined with cardboard boxes, photoreal, morning light.",
    "The same warehouse at night under sodium lamps, wet concrete floor reflecting orange light.",
    "A dusty warehouse in a desert town, strong midday sun through skylights, film grain.",
]
WEIGHTS = [
    {"vis": 0.3, "edge": 0.3, "depth": 0.2, "seg": 0.2},
    {"edge": 0.6, "depth": 0.4},
    {"depth": 0.5, "seg": 0.5},
]


def make_scene(folder: Path) -> Path:
    """A small synthetic render: colour, depth and segmentation videos, 320x180, 24 frames at 24 fps."""
    from cosmoskit.api import make_test_video

    folder.mkdir(parents=True, exist_ok=True)
    common: dict[str, Any] = {"width": 320, "height": 180, "frames": 24, "fps": 24}
    make_test_video(folder / "color.mp4", source="testsrc2", **common)
    make_test_video(folder / "depth.mp4", source="color=c=gray", extra=["-vf", "geq=lum='255*Y/H':cb=128:cr=128"],
                    **common)
    make_test_video(folder / "seg.mp4", source="color=c=navy",
                    extra=["-vf", "drawbox=x=0:y=100:w=320:h=80:color=olive:t=fill,"
                                  "drawbox=x=120:y=40:w=80:h=80:color=red:t=fill"],
                    **common)
    return folder


def other_models() -> list[str]:
    """The other transfer models' operations that are loaded and say what the demo runs with them
    (``demo_weights``, one weight set per demo prompt): each model plugin may be left out or deleted."""
    from cosmoskit import api

    names = [n for n in api.operation_names()
             if n != "transfer" and api.operation_class(n).kind_name() == "transfer"
             and len(getattr(api.operation_class(n), "demo_weights", ()) or ()) >= len(PROMPTS)]
    return sorted(names, key=lambda n: (not n.startswith("transfer"), n))


def run_demo(folder: Path, *, json_: bool = False) -> None:
    from cosmoskit import api

    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "cosmoskit.yaml"
    if not config.exists():
        config.write_text(DEMO_CONFIG)
    api.use_config(str(config))
    settings, ledger = api.settings(), api.ledger()
    say = (lambda text: None) if json_ else api.say
    say(f"[bold]cosmoskit demo[/bold] in {folder} — the model is the CPU emulator (outputs are labelled, not real)")
    scene = folder / "inputs" / SCENE
    if not (scene / "seg.mp4").exists():
        say("Making a sample render (colour, depth, segmentation) with ffmpeg …")
        make_scene(scene)

    with ledger.read() as tx:
        taken = {p["name"] for p in tx.prompts()}
    drafts = []
    for text in PROMPTS:
        doc = api.new_prompt(text, scene, taken_names=taken)
        taken.add(doc["name"])
        drafts.append(doc)
    with ledger.transaction() as tx:
        prompts = [tx.add_prompt(p) for p in drafts]
    say("Created prompts " + ", ".join(f"{p['id']} ({p['name']})" for p in prompts))

    engine = api.engine()
    try:
        docs = []
        for prompt, weights in zip(prompts, WEIGHTS, strict=True):
            docs += engine.new_runs("transfer", [prompt["id"]], {"weights": weights})
        say(f"Transfer 1: one batch of {len(docs)} runs with different weights (one model load) …")
        transfers = engine.run_now(docs, quiet=json_)
        done = [r for r in transfers if r["status"] == "completed"]
        results: list[api.RunRecord] = list(transfers)
        for name in other_models():
            cls = api.operation_class(name)
            more = [d for prompt, weights in zip(prompts, cls.demo_weights, strict=False)
                    for d in engine.new_runs(name, [prompt["id"]], {"weights": weights})]
            say(f"{cls.model}: the same prompts, one batch of {len(more)} runs …")
            results += engine.run_now(more, quiet=json_)
        if done:
            say(f"Upscale of {done[0]['id']} (3x the resolution bucket) …")
            source = done[0]
            up = engine.new_runs("upscale", [source["prompt_id"]],
                                 {"video": str(settings.home / source["outputs"]["output.mp4"]),
                                  "source_run": source["id"]},
                                 extra={"parent_run": source["id"]})
            results += engine.run_now(up, quiet=json_)
        say(f"Enhance of prompt {prompts[0]['id']} with the prompt upsampler …")
        results += engine.run_now(engine.new_runs("enhance", [prompts[0]["id"]], {}), quiet=json_)
    finally:
        engine.close()
    if json_:
        api.emit_json({"home": str(settings.home), "prompts": [p["id"] for p in prompts], "runs": results})
        return
    api.show_runs(results, settings.home)
    enhanced = [r for r in results if r["operation"] == "enhance" and r["status"] == "completed"]
    if enhanced:
        with ledger.read() as tx:
            child = tx.prompt(enhanced[0].get("result_prompt") or "")
        if child:
            say(f"Enhanced prompt {child['id']}: {api.escape(child['text'][:160])}…")
    say(f"\nVideos are in {settings.home / 'outputs'} (one folder per run: output, spec, command, logs).")
    say(f"Next: cd {folder} && cosmoskit run list; `cosmoskit report` shows each prompt's runs of every model "
        "side by side")
