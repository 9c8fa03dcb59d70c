"""Cosmos 3 transfer (NVIDIA/cosmos-framework at 5eee9ed): ``python -m cosmos_framework.scripts.inference``.

    python -m cosmos_framework.scripts.inference --parallelism-preset=latency -i SPEC… -o OUT \\
        --checkpoint-path Cosmos3-Nano
    torchrun --nproc-per-node=4 --master-port=P -m cosmos_framework.scripts.inference \\
        --parallelism-preset=latency … Cosmos3-Super

Transfer is one mode of the omni Generator: a sample with a hint block (edge, blur, depth, seg,
wsm) is a transfer sample.  Upstream's order (docs/models/cosmos3.md has the facts and sources):

1. tyro parses the flags; the output folder, console.log and debug.log come FIRST (mode "w",
   so a rerun overwrites them, even one that then fails validation).
2. The specs: -i files and quoted globs, sorted and de-duplicated; .json/.yaml one sample,
   .jsonl one per non-blank line; names default to the file stem (``<stem>_<line>``);
   pydantic forbids unknown keys at every level; a bad sample raises ValueError ("Error
   validating parameters from '<file>' at sample <i>"), exit 1; duplicate names likewise.
3. The model loads once; every sample is then built (defaults filled; a hint with neither
   ``vision_path`` nor ``control_path`` is a ValueError that ends the run unless
   --skip-invalid-samples writes a ``status: skip`` record).
4. Samples one by one into ``OUT/<name>/``: sample_args.json, then generation in chunks, then
   vision.mp4, control_<hint>.mp4 and sample_outputs.json (``status: success``).  Any error in
   transfer generation aborts the process (--keep-going does not cover it): later samples
   never run.  No guardrail runs on the transfer path.

The ``throughput`` preset deadlocks upstream for transfer on more than one rank; the emulator
refuses it with an error (exit 1, before the model loads) instead of hanging.
"""

from __future__ import annotations

import glob
import json
import os
import random
import time

from . import clock, timing
from . import validation as v
from .cli import tyro_error
from .common import (
    OOM_MESSAGE,
    SIDECAR_NAME,
    EmulatorConfigError,
    Knobs,
    Media,
    OutOfMemoryError,
    _out,
    banner,
    find_ffmpeg,
    write_sidecar,
)
from .controls import STRENGTHS, control_filters, look
from .modellog import ModelLog

MODEL = "Cosmos 3 (transfer)"
BANNER = banner(MODEL)
PYDANTIC = "2.12"
HINTS = ["edge", "blur", "depth", "seg", "wsm"]  # TransferHintKey order: the model's control order
ON_THE_FLY = ("edge", "blur")
CHECKPOINT_NAMES = ["Cosmos3-Nano", "Cosmos3-Super", "Cosmos3-Edge", "Cosmos3-Super-Text2Image",
                    "Cosmos3-Super-Image2Video", "Cosmos3-Super-Text2Image-4Step", "Cosmos3-Super-Image2Video-4Step"]
DEFAULT_CHECKPOINT = "Cosmos3-Nano"
MODEL_MODES = ["text2image", "text2video", "image2image", "image2video", "video2video", "audio_image2video",
               "forward_dynamics", "inverse_dynamics", "wam", "reasoner"]
RESOLUTIONS = ["256", "480", "704", "720", "768"]  # "704" only because COSMOS_TRAINING defaults to true
ASPECTS = ["1,1", "4,3", "3,4", "16,9", "9,16"]
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm")
# (W, H) of cosmos_framework/data/generator/utils.py VIDEO_RES_SIZE_INFO
RES_SIZE = {
    "256": {"1,1": (256, 256), "4,3": (320, 256), "3,4": (256, 320), "16,9": (320, 192), "9,16": (192, 320)},
    "480": {"1,1": (640, 640), "4,3": (736, 544), "3,4": (544, 736), "16,9": (832, 480), "9,16": (480, 832)},
    "704": {"1,1": (960, 960), "4,3": (1104, 832), "3,4": (832, 1104), "16,9": (1280, 704), "9,16": (704, 1280)},
    "720": {"1,1": (960, 960), "4,3": (1104, 832), "3,4": (832, 1104), "16,9": (1280, 720), "9,16": (720, 1280)},
    "768": {"1,1": (1024, 1024), "4,3": (1184, 880), "3,4": (880, 1184), "16,9": (1360, 768), "9,16": (768, 1360)},
}
# inference/defaults/video2video/sample_args.json (text2video's is identical); the negative prompt
# default is the structured JSON of defaults/neg_prompts.json, not reproduced here.
DEFAULT_NEGATIVE = "(cosmos-emulator: upstream's default negative prompt, defaults/neg_prompts.json)"
V2V_DEFAULTS = {
    "num_steps": 35, "guidance": 6.0, "shift": 10.0, "sigma_max": 80.0, "normalize_cfg": False,
    "negative_prompt": DEFAULT_NEGATIVE,
    "duration_template": "The video is {duration:.1f} seconds long and is of {fps:.0f} FPS.",
    "resolution_template": "This video is of {height}x{width} resolution.",
    "negative_metadata_mode": "none",
    "inverse_duration_template": "The video is not {duration:.1f} seconds long and is not of {fps:.0f} FPS.",
    "inverse_resolution_template": "This video is not of {height}x{width} resolution.",
    "negative_prompt_keep_metadata": True, "aspect_ratio": "16,9", "fps": 24, "num_frames": 189,
    "video_save_quality": 10, "image_save_quality": 95, "enable_sound": False,
}
TRANSFER_SAMPLE_DEFAULTS = {
    "num_video_frames_per_chunk": 93, "num_conditional_frames": 1, "max_frames": 5000, "show_control_condition": False,
    "show_input": False, "num_first_chunk_conditional_frames": 0, "share_vision_temporal_positions": True,
    "emphasize_control_in_prompt": True,
}
TRANSFER_HINT_DEFAULTS = {"edge": {"preset_edge_threshold": "medium"}, "blur": {"preset_blur_strength": "medium"}}
# applied only when exactly one hint is set, and only to fields the sample did not set itself
TRANSFER_DEFAULTS = {
    "edge": {"guidance": 3.0, "control_guidance": 1.5, "shift": 10.0},
    "blur": {"guidance": 3.0, "control_guidance": 1.5, "shift": 10.0},
    "depth": {"guidance": 3.0, "control_guidance": 1.5, "shift": 10.0},
    "seg": {"guidance": 3.0, "control_guidance": 2.0, "shift": 10.0},
    "wsm": {"guidance": 1.0, "control_guidance": 3.0, "shift": 10.0, "num_frames": 101, "fps": 10,
            "num_video_frames_per_chunk": 101},
}
TRANSFER_ONLY = ["control_guidance_interval", "negative_prompt_file", "num_video_frames_per_chunk",
                 "num_conditional_frames", "max_frames", "show_control_condition", "show_input",
                 "num_first_chunk_conditional_frames", "share_vision_temporal_positions",
                 "emphasize_control_in_prompt"]

# where upstream logs from: (module, path, line, function)
_SCRIPT = ("cosmos_framework.scripts.inference", "cosmos_framework/scripts/inference.py")
W_LOADED = (*_SCRIPT, 46, "inference")
W_SKIP = (*_SCRIPT, 65, "inference")
_INIT = ("cosmos_framework.inference.common.init", "cosmos_framework/inference/common/init.py")
W_CONSOLE = (*_INIT, 126, "_init_log_files")
W_DEBUGLOG = (*_INIT, 127, "_init_log_files")
_INF = ("cosmos_framework.inference.inference", "cosmos_framework/inference/inference.py")
W_ARGS = (*_INF, 1843, "_generate_transfer_batch")
W_CONTROL = (*_INF, 1881, "_generate_transfer_batch")
W_OUTPUTS = (*_INF, 1889, "_generate_transfer_batch")
_TR = ("cosmos_framework.inference.transfer", "cosmos_framework/inference/transfer.py")
W_PRECOMPUTED = (*_TR, 113, "load_transfer_control_frames")
W_ON_THE_FLY = (*_TR, 135, "load_transfer_control_frames")
W_PROMPT = (*_TR, 477, "generate_transfer_sample")
CONSOLE_INCLUDE = ["cosmos_framework.model.attention", "cosmos_framework.utils.checkpoint_db", "imaginaire.trainer",
                   "cosmos_framework.utils.generator.model_loader", "*.callbacks.*"]
CONSOLE_EXCLUDE = ["*._*", "projects.*", "imaginaire.*"]


# --------------------------------------------------------------------------- the spec schema


def _file_or_url():
    """ResolvedFilePathOrUrl: a URL passes; a local path must be a file (a pydantic value error otherwise)."""
    def check(value, loc, errors):
        if not isinstance(value, str):
            return v.string()(value, loc, errors)
        if value.startswith(("http://", "https://", "s3://")):
            return value
        p = os.path.abspath(os.path.expanduser(value))
        if not os.path.isfile(p):
            errors.append(v.Err(loc, f"Value error, Path does not point to a file: {value}", "value_error", value))
            return v._BAD
        return p
    return check


def _hint(extra=None):
    s = {"control_path": v.Field(_file_or_url(), None, nullable=True),
         "weight": v.Field(v.number(), None, nullable=True)}
    s.update(extra or {})
    return s


HINT_SCHEMAS = {
    "edge": ("EdgeTransferOverrides",
             _hint({"preset_edge_threshold": v.Field(v.literal(*STRENGTHS), None, nullable=True)})),
    "blur": ("BlurTransferOverrides",
             _hint({"preset_blur_strength": v.Field(v.literal("none", *STRENGTHS), None, nullable=True)})),
    "depth": ("TransferOverrides", _hint()),
    "seg": ("TransferOverrides", _hint()),
    "wsm": ("TransferOverrides", _hint()),
}


def _opt(check):
    return v.Field(check, None, nullable=True)


def sample_schema():
    """OmniSampleOverrides: every field optional, unknown keys forbidden everywhere."""
    pair = v.pair(v.number(ge=0))
    s = {
        # SampleOverrides
        "output_dir": _opt(v.string()), "model": _opt(v.string()), "extra": _opt(v.any_dict()),
        "name": _opt(v.string()), "num_outputs": _opt(v.integer(gt=0)), "seed": _opt(v.integer()),
        "tensors_file": _opt(v.file_path()), "pickle_file": _opt(v.file_path()),
        # SamplingOverrides
        "num_steps": _opt(v.integer(gt=0)), "guidance": _opt(v.number(ge=0, le=7)), "guidance_interval": _opt(pair),
        "normalize_cfg": _opt(v.boolean()), "shift": _opt(v.number()), "sigma_max": _opt(v.number()),
        # TextDataOverrides
        "prompt_path": _opt(v.file_path()), "prompt": _opt(v.string()), "negative_prompt": _opt(v.string()),
        "duration_template": _opt(v.string()), "resolution_template": _opt(v.string()),
        "negative_metadata_mode": _opt(v.literal("none", "same", "inverse")),
        "inverse_duration_template": _opt(v.string()), "inverse_resolution_template": _opt(v.string()),
        "negative_prompt_keep_metadata": _opt(v.boolean()),
        # VisionDataOverrides
        "vision_path": _opt(_file_or_url()), "condition_frame_indexes_vision": _opt(v.list_of(v.integer())),
        "condition_video_keep": _opt(v.literal("first", "last")), "resolution": _opt(v.literal(*RESOLUTIONS)),
        "aspect_ratio": _opt(v.literal(*ASPECTS)), "fps": _opt(v.integer(ge=1)), "num_frames": _opt(v.integer(gt=0)),
        "video_save_quality": _opt(v.integer(ge=0, le=10)), "image_save_quality": _opt(v.integer(ge=0, le=100)),
        # SoundDataOverrides, ActionDataOverrides
        "enable_sound": _opt(v.boolean()), "sound_path": _opt(_file_or_url()),
        "action_path": _opt(_file_or_url()), "domain_name": _opt(v.string()), "image_size": _opt(v.integer(gt=0)),
        "action_chunk_size": _opt(v.integer(gt=0)), "raw_action_dim": _opt(v.integer(gt=0)),
        "view_point": _opt(v.string()),
        # ReasonerDataOverrides
        "max_new_tokens": _opt(v.integer(gt=0)), "do_sample": _opt(v.boolean()), "temperature": _opt(v.number()),
        "top_k": _opt(v.integer(gt=0)), "top_p": _opt(v.number()), "repetition_penalty": _opt(v.number()),
        "presence_penalty": _opt(v.number()), "video_fps": _opt(v.number(gt=0)),
        # TransferDataOverrides
        "control_guidance": _opt(v.number(ge=0, le=10)), "control_guidance_interval": _opt(pair),
    }
    for hint in HINTS:
        title, schema = HINT_SCHEMAS[hint]
        s[hint] = _opt(v.model(title, schema))
    s.update({
        "negative_prompt_file": _opt(v.string()), "num_video_frames_per_chunk": _opt(v.integer(gt=0)),
        "num_conditional_frames": _opt(v.integer(ge=0)), "max_frames": _opt(v.integer(gt=0)),
        "show_control_condition": _opt(v.boolean()), "show_input": _opt(v.boolean()),
        "num_first_chunk_conditional_frames": _opt(v.integer(ge=0)),
        "share_vision_temporal_positions": _opt(v.boolean()), "emphasize_control_in_prompt": _opt(v.boolean()),
        # SampleDataOverrides, PromptUpsamplingOverrides, OmniSampleOverrides
        "model_mode": _opt(v.literal(*MODEL_MODES)), "prompt_upsampling": _opt(v.boolean()),
        "prompt_upsampler_max_tokens": _opt(v.integer(gt=0)), "prompt_upsampler_temperature": _opt(v.number(ge=0)),
        "prompt_upsampler_top_p": _opt(v.number(ge=0, le=1)), "prompt_upsampler_top_k": _opt(v.integer(ge=0)),
        "prompt_upsampler_repetition_penalty": _opt(v.number(gt=0)),
        "prompt_upsampler_presence_penalty": _opt(v.number()), "prompt_upsampler_seed": _opt(v.integer()),
        "defaults_file": _opt(v.file_path()),
    })
    return s


def hints_of(sample):
    return [h for h in HINTS if sample.get(h) is not None]


def check_transfer_fields(sample):
    """TransferDataOverrides._validate_transfer_hints: transfer-only fields need a hint."""
    configured = any(sample.get(f) is not None for f in TRANSFER_ONLY)
    cg = sample.get("control_guidance")
    if (configured or (cg is not None and cg != 1.0)) and not hints_of(sample):
        return f"transfer inference requires at least one control hint ({', '.join(HINTS)})"
    return None


def _read_spec(path):
    suffix = os.path.splitext(path)[1]
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if suffix == ".json":
        return [json.loads(text)]
    if suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line]  # blank lines skipped (unlike Transfer 2.5)
    if suffix in (".yaml", ".yml"):
        try:
            import yaml  # type: ignore
        except ImportError:
            raise EmulatorConfigError(
                f"{path}: YAML specs need PyYAML on this host (the emulator is stdlib-only)"
            ) from None
        return [yaml.safe_load(text)]
    raise ValueError(f"Unsupported file extension: {path}")


def expand_inputs(paths):
    """-i values: quoted globs expanded, then sorted and de-duplicated (the order samples run in)."""
    out = []
    for p in paths:
        if "*" in p:
            out.extend(glob.glob(p, recursive=True))
        else:
            out.append(p)
    return sorted(set(out))


def _deep_merge(base, overrides):
    merged = dict(base)
    for key, value in overrides.items():
        if key in merged and isinstance(merged[key], dict) and isinstance(value, dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_samples(paths, override):
    """SampleOverrides.from_files -> [(sample, the fields the file set)], names filled and unique."""
    if not paths:
        raise ValueError("No inference parameter files")
    out = []
    names = set()
    for path in expand_inputs(paths):
        data_list = _read_spec(path)
        abspath = os.path.abspath(os.path.expanduser(path))
        cwd = os.getcwd()
        os.chdir(os.path.dirname(abspath))
        try:
            for i, data in enumerate(data_list):
                merged = _deep_merge(data, override) if isinstance(data, dict) else data
                try:
                    sample = v.validate(sample_schema(), merged, "OmniSampleOverrides", PYDANTIC,
                                        after=check_transfer_fields)
                except v.ValidationError as e:
                    raise ValueError(f"Error validating parameters from '{abspath}' at sample {i}\n"
                                     f"Parameters: {merged}\n{e}") from e
                given = frozenset(k for k, val in merged.items() if val is not None)
                if not sample["name"]:
                    stem = os.path.splitext(os.path.basename(path))[0]
                    sample["name"] = f"{stem}_{i}" if path.lower().endswith(".jsonl") else stem
                if sample["name"] in names:
                    raise ValueError(f"Duplicate name: '{sample['name']}'")
                names.add(sample["name"])
                out.append((sample, given))
        finally:
            os.chdir(cwd)
    return out


def build_sample(sample, given, model_name, rng):
    """OmniSampleOverrides.build_sample for a transfer sample: defaults in upstream's priority order.

    Raises ValueError as upstream does (after the model has loaded)."""
    s = dict(sample)
    hints = hints_of(s)
    vision = s.get("vision_path")
    if vision is not None:
        ext = os.path.splitext(vision)[1].lower()
        if ext not in IMAGE_EXTENSIONS + VIDEO_EXTENSIONS:
            raise ValueError(f"Invalid vision extension: {ext}")
    if s.get("model_mode") is None:
        mode_in = "text" if vision is None else ("image" if os.path.splitext(vision)[1].lower() in IMAGE_EXTENSIONS
                                                 else "video")
        s["model_mode"] = f"{mode_in}2{'image' if s.get('num_frames') == 1 else 'video'}"
    for key, value in V2V_DEFAULTS.items():  # the modality defaults (video modes share these)
        if s.get(key) is None:
            s[key] = value
    if s.get("resolution") is None:
        s["resolution"] = "480" if model_name == "Cosmos3-Edge" else "720"  # the model config's tier
    if s["negative_prompt_keep_metadata"] and s["negative_metadata_mode"] == "none":
        s["negative_metadata_mode"] = "same"
    if s.get("control_guidance") is None:
        s["control_guidance"] = 1.0
    for key, value in TRANSFER_SAMPLE_DEFAULTS.items():
        if s.get(key) is None:
            s[key] = value
    for hint in hints:
        block = dict(s[hint])
        for key, value in TRANSFER_HINT_DEFAULTS.get(hint, {}).items():
            if block.get(key) is None:
                block[key] = value
        block["weight"] = 1.0 if block.get("weight") is None else block["weight"]
        s[hint] = block
        if vision is None and block.get("control_path") is None:
            raise ValueError(f"transfer inference requires 'vision_path' or a pre-computed 'control_path' "
                             f"(hint: {hint})")
    if len(hints) == 1:
        for key, value in TRANSFER_DEFAULTS[hints[0]].items():
            if key not in given:
                s[key] = value
    if s.get("num_outputs") is None:
        s["num_outputs"] = 1
    if s.get("model") is None:
        s["model"] = ""
    if s.get("extra") is None:
        s["extra"] = {}
    # the tokenizer compresses time by 4: num_frames is kept at 4k+1
    s["num_frames"] = timing.round_chunk_4k1(s["num_frames"])
    if s.get("seed") is None:
        s["seed"] = rng.randint(0, 10000)  # upstream: random.randint after set_seed(0) at start-up
    if s.get("prompt") is None:
        path = s.get("prompt_path")
        if path is None:
            s["prompt"] = ""
        else:
            with open(path, encoding="utf-8") as f:
                text = f.read()
            s["prompt"] = json.dumps(json.loads(text)) if path.lower().endswith(".json") else text.strip()
    return s


def final_prompt(sample, hints, chunk, fps, width, height, aspect):
    """The user prompt the model sees: metadata injected, then the control-emphasis sentence."""
    prompt = sample["prompt"]
    try:
        obj = json.loads(prompt)
    except ValueError:
        obj = None
    if isinstance(obj, dict):
        obj.update({"duration": f"{int(chunk / fps) if fps > 0 else 0}s", "fps": float(fps),
                    "resolution": {"H": int(height), "W": int(width)}, "aspect_ratio": aspect})
        prompt = json.dumps(obj)
    else:
        parts = [prompt.strip()]
        if sample.get("duration_template"):
            parts.append(sample["duration_template"].format(duration=chunk / fps, fps=fps))
        if sample.get("resolution_template"):
            parts.append(sample["resolution_template"].format(height=height, width=width))
        prompt = " ".join(p for p in parts if p)
    if sample["emphasize_control_in_prompt"]:
        names = ", ".join(hints)
        prompt = (prompt.rstrip() + f" Follow the {names} control video precisely: shape, contour, silhouette,"
                  f" position, and motion of every visible structure must align with the {names}"
                  f" signal at every frame.")
    return prompt


# --------------------------------------------------------------------------- the command line (tyro)

_BOOL = {"guardrails": True, "offload-guardrail-models": False, "keep-going": False, "skip-invalid-samples": False,
         "debug": False, "profile": False, "benchmark": False, "diffusion-cache": True, "use-torch-compile": True,
         "use-cuda-graphs": False, "compile-dynamic": True, "use-ema-weights": True,
         "use-separate-pipeline-vision-decode-gpu": False}
_VALUE = {"output-dir": "str", "checkpoint-path": "str", "config-file": "str", "experiment": "str",
          "parallelism-preset": ("latency", "throughput"), "dp-shard-size": "int", "dp-replicate-size": "int",
          "cp-size": "int", "cfgp-size": "int", "device-memory-utilization": "float",
          "compiled-region": ("all", "language"),
          "quantization-method": ("mxfp8", "nvfp4"), "warmup": "int", "num-iterations": "int", "max-num-seqs": "int",
          "max-model-len": "int", "diffusion-cache-thresh": "float", "diffusion-cache-residual-order": "int",
          "sampler": ("unipc", "edm"), "model-size": ("0.6B", "2B", "8B", "30B-A3B", "32B", "235B-A22B"),
          "credential-path": "str", "checkpoint-cache-dir": "str"}
# sample fields a flag sets in every sample
_SAMPLE = {"seed": "int", "num-steps": "int", "guidance": "float", "shift": "float", "sigma-max": "float",
           "resolution": "str", "aspect-ratio": "str", "fps": "int", "num-frames": "int", "model-mode": "str",
           "num-outputs": "int", "prompt": "str", "prompt-path": "str", "negative-prompt": "str", "vision-path": "str",
           "control-guidance": "float", "num-video-frames-per-chunk": "int", "num-conditional-frames": "int",
           "max-frames": "int", "num-first-chunk-conditional-frames": "int", "video-save-quality": "int",
           "emphasize-control-in-prompt": "bool", "show-input": "bool", "show-control-condition": "bool",
           "share-vision-temporal-positions": "bool", "negative-prompt-keep-metadata": "bool",
           "negative-metadata-mode": "str"}


def parse_cli(args, prog="inference.py"):
    """tyro's view of cosmos_framework.scripts.inference -> (setup dict, sample overrides).

    SystemExit(2) on a bad line."""
    setup = {k.replace("-", "_"): d for k, d in _BOOL.items()}
    setup.update({"output_dir": None, "checkpoint_path": DEFAULT_CHECKPOINT, "parallelism_preset": "latency",
                  "input_files": []})
    override = {}
    i = 0

    def fail(message):
        tyro_error(prog, "Parsing error", [message])
        raise SystemExit(2)
    while i < len(args):
        arg = args[i]
        if arg in ("-h", "--help"):
            print(f"usage: {prog} [-h] -i PATH [PATH ...] -o PATH [OPTIONS]\n\n{BANNER}\n"
                  "The emulator takes Cosmos 3's transfer flags; see docs/models/cosmos3.md.")
            raise SystemExit(0)
        value = None
        if arg.startswith("--") and "=" in arg:
            arg, value = arg.split("=", 1)
        name = {"-i": "input-files", "-o": "output-dir", "-n": "num-outputs"}.get(
            arg, arg[2:].replace("_", "-") if arg.startswith("--") else None)
        if name is None:
            fail(f"Unrecognized options: {arg}")

        def take(value=value, arg=arg):
            nonlocal i
            if value is not None:
                return value
            if i + 1 >= len(args) or (args[i + 1].startswith("--") and len(args[i + 1]) > 2):
                fail(f"Missing value for {arg}")
            i += 1
            return args[i]

        def typed(raw, kind, flag):
            try:
                if kind == "int":
                    return int(raw)
                if kind == "float":
                    return float(raw)
                if kind == "bool":
                    if raw not in ("True", "False"):
                        raise ValueError
                    return raw == "True"
            except ValueError:
                fail(f"Invalid value '{raw}' for {flag}")
            if isinstance(kind, tuple) and raw not in kind:
                fail(f"Invalid choice: '{raw}' for {flag} (choose from {', '.join(kind)})")
            return raw
        if name == "input-files":
            got = [value] if value is not None else []
            while value is None and i + 1 < len(args) and not args[i + 1].startswith("-"):
                i += 1
                got.append(args[i])
            if not got:
                fail(f"Missing value for {arg}")
            setup["input_files"].extend(got)
        elif name in _BOOL or (name.startswith("no-") and name[3:] in _BOOL):
            key = name[3:] if name.startswith("no-") else name
            setup[key.replace("-", "_")] = not name.startswith("no-")
        elif name in _VALUE:
            setup[name.replace("-", "_")] = typed(take(), _VALUE[name], arg)
        elif name in _SAMPLE or (name.startswith("no-") and _SAMPLE.get(name[3:]) == "bool"):
            if _SAMPLE.get(name) == "bool" or name.startswith("no-"):
                key = name[3:] if name.startswith("no-") else name
                override[key.replace("-", "_")] = not name.startswith("no-")
            else:
                override[name.replace("-", "_")] = typed(take(), _SAMPLE[name], arg)
        else:
            fail(f"Unrecognized options: {arg}")
        i += 1
    if not setup["input_files"]:
        tyro_error(prog, "Required options", ["Required options: -i/--input-files"])
        raise SystemExit(2)
    return setup, override


# --------------------------------------------------------------------------- the emulated run


def detect_aspect(width, height):
    values = {"16,9": 16 / 9, "4,3": 4 / 3, "1,1": 1.0, "3,4": 3 / 4, "9,16": 9 / 16}
    ratio = width / height
    return min(values, key=lambda k: (values[k] - ratio) ** 2)


class Run:
    def __init__(self, setup, ctx, knobs, script, argv):
        self.setup, self.ctx, self.knobs, self.script, self.argv = setup, ctx, knobs, script, argv
        self.out = os.path.abspath(setup["output_dir"])
        self.log = ModelLog(CONSOLE_INCLUDE, CONSOLE_EXCLUDE, prefix="job=|")
        self.world = int(os.environ.get("WORLD_SIZE", "1") or 1)
        self.rng = random.Random(0)  # upstream's init_script calls set_seed(0)
        self.media = None

    def emu(self, msg):
        self.log.emu(msg)

    def start(self):
        os.makedirs(self.out, exist_ok=True)
        self.log.info(W_CONSOLE, f"Console log saved to {os.path.join(self.out, 'console.log')}")
        self.log.info(W_DEBUGLOG, f"Debug log saved to {os.path.join(self.out, 'debug.log')}")
        self.log.open_files(self.out, first_lines=[BANNER])

    def refuse_unemulated(self, loaded):
        for sample, _ in loaded:
            if not hints_of(sample):
                mode = sample.get("model_mode") or "a non-transfer mode"
                raise EmulatorConfigError(
                    f"sample {sample['name']!r} has no hint block ({', '.join(HINTS)}): Cosmos 3 {mode} is not "
                    "emulated, only transfer")
            for key in ("vision_path", *HINTS):
                value = sample.get(key)
                url = value if isinstance(value, str) else (value or {}).get("control_path") if key in HINTS else None
                if isinstance(url, str) and url.startswith(("http://", "https://", "s3://")):
                    raise EmulatorConfigError(f"sample {sample['name']!r}: URL inputs are not emulated (no network); "
                                              "give a local path")
        if self.setup["parallelism_preset"] == "throughput" and self.world > 1:
            self.emu(f"REFUSED: --parallelism-preset=throughput with transfer samples on {self.world} ranks deadlocks "
                     "upstream (the control forward runs on one rank only); use --parallelism-preset=latency")
            raise RuntimeError(
                "[cosmos-emulator] transfer under --parallelism-preset=throughput deadlocks the cross-rank allgather "
                "upstream (cosmos-framework tests/nano_inference_smoke_test.py); the emulator refuses it instead of "
                "hanging: use --parallelism-preset=latency, or one process per GPU (docs/models/cosmos3.md)")
        if self.setup["parallelism_preset"] == "throughput":
            self.emu("WARNING: --parallelism-preset=throughput: harmless on one rank, a deadlock for transfer on more")

    def load(self, loaded):
        ckpt = self.setup["checkpoint_path"]
        if ckpt not in CHECKPOINT_NAMES and not ckpt.startswith("s3://") and not os.path.isdir(ckpt):
            raise ValueError(f"[cosmos-emulator] --checkpoint-path {ckpt!r} is neither a registered checkpoint "
                             f"({', '.join(CHECKPOINT_NAMES)}) nor a local checkpoint folder")
        if ckpt.startswith("Cosmos3-Super") and self.world < 2:
            self.emu("WARNING: upstream documents that Cosmos3-Super does not fit on one 80 GB GPU; it runs under "
                     "torchrun --nproc-per-node=4|8 (FSDP)")
        if ckpt == "Cosmos3-Edge":
            self.emu("WARNING: Cosmos3-Edge has no upstream transfer test or cookbook")
        self.emu(f"loading (simulated): checkpoint={ckpt} (one omni model for every control)")
        k = self.knobs
        if k.load_seconds:
            clock.wait(k.load_seconds)
        self.load_seconds = timing.load_seconds(k.load_seconds, 0.0, 0)
        self.emu(f"model loaded: checkpoint={ckpt} load_seconds={self.load_seconds:.2f}")

    def build(self, loaded):
        built = []
        for sample, given in loaded:
            try:
                built.append(build_sample(sample, given, self.setup["checkpoint_path"], self.rng))
            except ValueError as e:
                if not self.setup["skip_invalid_samples"]:
                    raise
                msg = f"Skipping sample '{sample['name']}': {e}"
                self.log.warning(W_SKIP, msg)
                folder = os.path.join(self.out, sample["name"])
                os.makedirs(folder, exist_ok=True)
                args = dict(sample, output_dir=folder)
                write_sidecar(os.path.join(folder, "sample_outputs.json"), {
                    "args": args, "status": "skip", "message": msg, "stack_trace": None, "outputs": []})
                self.emu(f"sample {sample['name']} skipped: {e}")
        return built

    def generate(self, samples):
        total = len(samples)
        for index, s in enumerate(samples):
            outputs = s["num_outputs"]
            for j in range(outputs):
                folder = (os.path.join(self.out, s["name"]) if outputs == 1
                          else os.path.join(self.out, s["name"], str(j)))
                one = dict(s, output_dir=folder, seed=s["seed"] + j)
                self.sample(index, total, one)

    def sample(self, index, total, s):
        media, k = self.media, self.knobs
        name, folder = s["name"], s["output_dir"]
        tag = f"sample {index + 1}/{total} {name}"
        os.makedirs(folder, exist_ok=True)
        args_file = os.path.join(folder, "sample_args.json")
        with open(args_file, "w", encoding="utf-8") as f:
            f.write(json.dumps(s, ensure_ascii=False, separators=(",", ":")))
        self.log.info(W_ARGS, f"[RANK 0] Saved sample args to '{args_file}'")
        hints = hints_of(s)
        word = k.block_word
        if word and word in s["prompt"]:
            self.emu(f"note: {tag}: the prompt holds the block word, but Cosmos 3 runs no guardrail on the transfer "
                     "path: nothing is blocked")
        vision = s.get("vision_path")
        input_fps = 0.0
        if vision is not None:
            info = media.probe(vision)
            is_image = os.path.splitext(vision)[1].lower() in IMAGE_EXTENSIONS
            input_fps = 1.0 if is_image else float(info["fps"])
            vision_frames = 1 if is_image else min(info["frames"], s["max_frames"])
            aspect = s["aspect_ratio"] or detect_aspect(info["width"], info["height"])
        else:
            first = next(s[h]["control_path"] for h in hints if s[h]["control_path"])
            info = media.probe(first)
            aspect = detect_aspect(info["width"], info["height"])  # the spec's aspect_ratio is ignored here
            vision_frames = None
        if s["num_first_chunk_conditional_frames"] > 0 and vision is None:
            raise ValueError("num_first_chunk_conditional_frames > 0 requires 'vision_path' for first-chunk "
                             "conditioning")
        frames = {}
        for h in hints:
            path = s[h]["control_path"]
            if path is not None and os.path.exists(path):
                frames[h] = min(media.probe(path)["frames"], s["max_frames"])
                self.log.info(W_PRECOMPUTED, f"Loaded pre-computed {h} control from {path}")
            elif h not in ON_THE_FLY:
                raise FileNotFoundError(f"Missing pre-computed control input for '{h}'. Provide a control_path in "
                                        "the transfer config.")
            else:
                frames[h] = vision_frames
                self.log.info(W_ON_THE_FLY, f"Computing {h} control input on the fly")
        total_frames = frames[hints[0]]
        fps = input_fps if input_fps > 0 else float(s["fps"])
        width, height = RES_SIZE[s["resolution"]][aspect]
        chunks, chunk = timing.cosmos3_chunks(total_frames, s["num_video_frames_per_chunk"],
                                              s["num_conditional_frames"])
        prompt = final_prompt(s, hints, chunk, round(fps), width, height, s["aspect_ratio"])
        self.log.info(W_PROMPT, f"[transfer] final user prompt: {prompt}")
        weights = [s[h]["weight"] for h in hints]
        extra = 1.5 if s["control_guidance"] != 1.0 else 1.0  # control-CFG adds a third forward to the two of CFG
        per_chunk = timing.chunk_seconds(k.seconds_per_chunk, s["num_steps"], len(hints), k.control_factor, extra)
        stride = chunk - s["num_conditional_frames"]
        for c in range(chunks):
            start = c * stride
            for h in hints:
                if frames[h] <= start and frames[h] < total_frames:
                    raise RuntimeError("Cannot pad an empty frame tensor")
            if c == 0:
                # build_transfer_batch checks the weights for every chunk; the first one fails first
                assert all(w >= 0 for w in weights), f"control_weights must all be non-negative, got {weights}"
                assert sum(weights) > 0, f"control_weights must have a positive sum, got {weights}"
                if k.oom_above is not None and len(hints) > k.oom_above:
                    self.emu(f"simulated OOM: {tag} has {len(hints)} controls > "
                             f"COSMOS_EMULATOR_OOM_ABOVE_CONTROLS={k.oom_above}")
                    raise OutOfMemoryError(OOM_MESSAGE)
            self.emu(f"{tag} chunk {c + 1}/{chunks}" + (f" (simulated {per_chunk:.2f} s)" if per_chunk else ""))
            if per_chunk:
                clock.wait(per_chunk)
        ext = ".jpg" if s["num_frames"] == 1 else ".mp4"

        def write(src, path, filters, pre=()):
            if total_frames == 1:
                media.still(src, path, width, height, filters, pre=pre)
            else:
                media.encode(src, path, width, height, total_frames, fps, filters, pre=pre)
        crop = [f"scale={width}:{height}:force_original_aspect_ratio=increase", f"crop={width}:{height}"]
        source = vision or s[hints[0]]["control_path"]
        total_w = sum(weights)
        effective = {h: round(w / total_w, 4) for h, w in zip(hints, weights)}
        token = f"{index}|{name}|{s['prompt']}" if k.variation else None
        the_look, filters, _ = look(s["seed"], effective, token)
        vision_file = os.path.join(folder, f"vision{ext}")
        write(source, vision_file, filters, pre=crop)
        files = [vision_file]
        controls = {}
        for h in hints:
            path = os.path.join(folder, f"control_{h}{ext}")
            given = s[h]["control_path"]
            if given:
                write(given, path, [], pre=crop)
            else:
                strength = s[h].get("preset_edge_threshold") or s[h].get("preset_blur_strength") or "medium"
                pre, post = control_filters(h, strength, height)
                write(vision, path, post, pre=crop + pre)
            files.append(path)
            controls[h] = {"control_path": given, "weight": s[h]["weight"], "effective_weight": effective[h],
                           "generated": not given, "file": os.path.basename(path)}
            self.log.info(W_CONTROL, f"[RANK 0] Saved control video to '{path}'")
        write_sidecar(os.path.join(folder, SIDECAR_NAME), {
            "emulator": "cosmos-emulator", "is_model_output": False, "model": MODEL,
            "note": "CPU stand-in for Cosmos 3 transfer: vision.mp4 is the input (or first control) video cropped to "
                    "the output bucket, with a visible 'COSMOS EMULATOR' label and a colour look; NOT a model output.",
            "command": [self.script, *self.argv], "checkpoint": self.setup["checkpoint_path"], "name": name,
            "output": os.path.basename(vision_file), "controls": controls, "width": width, "height": height,
            "frames": total_frames, "fps": fps, "chunks": chunks, "chunk_frames": chunk, "num_steps": s["num_steps"],
            "guidance": s["guidance"], "control_guidance": s["control_guidance"], "seed": s["seed"],
            "final_prompt": prompt, "variation": k.variation, "look": the_look,
        })
        outputs_file = os.path.join(folder, "sample_outputs.json")
        with open(outputs_file, "w", encoding="utf-8") as f:
            f.write(json.dumps({"args": s, "status": "success", "message": None, "stack_trace": None,
                                "outputs": [{"content": {}, "files": files}]}, ensure_ascii=False,
                               separators=(",", ":")))
        self.log.success(W_OUTPUTS, f"[RANK 0] Saved transfer outputs to '{outputs_file}'")
        self.emu(f"{tag} done: {vision_file}")


def run(script, script_args, ctx):
    _out(BANNER)
    knobs = Knobs()
    setup, override = parse_cli(list(script_args), prog="inference.py")
    if setup["output_dir"] is None:
        raise ValueError("'output_dir' is required")
    run_ = Run(setup, ctx, knobs, script, list(script_args))
    t0 = time.time()
    run_.start()
    try:
        loaded = load_samples(setup["input_files"], override)
        run_.log.info(W_LOADED, f"Loaded {len(loaded)} samples")
        run_.refuse_unemulated(loaded)
        run_.media = Media(find_ffmpeg(), knobs)
        run_.load(loaded)
        samples = run_.build(loaded)
        run_.generate(samples)
        run_.emu(f"finished: samples={len(samples)} elapsed={time.time() - t0:.2f}s")
    finally:
        run_.log.close()
    return 0


__all__ = ["build_sample", "expand_inputs", "final_prompt", "load_samples", "parse_cli", "run"]
