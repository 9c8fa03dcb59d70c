"""Cosmos Transfer 2.5 (nvidia-cosmos/cosmos-transfer2.5 at 2ff49d0): ``examples/inference.py``.

    python examples/inference.py -i spec.json|batch.jsonl [more…] -o OUT [setup flags] [sample overrides]
    torchrun --nproc_per_node=N --master_port=P examples/inference.py …

What upstream does, in its order (docs/models/transfer2.5.md has every fact and its source):

1. tyro parses the flags (an unknown flag: a tyro error, exit 2).
2. ``InferenceArguments.from_files``: each file is .json (one sample) or .jsonl (a sample per
   line, blank lines NOT skipped); relative paths resolve against the spec file's folder;
   pydantic checks each sample (unknown top-level keys forbidden, control blocks ignore
   unknown keys, referenced files must exist) and a bad one prints "Error validating
   parameters from '<file>' at line <i>" and exits 1; duplicate names exit 1.  All of it
   before the output folder exists.
3. The output folder, console.log and debug.log (mode "w").  The model: one hint key across
   the batch loads that control's checkpoint; more than one loads the four-branch
   multi-control model (logged).  config.yaml.
4. Samples one after another: ``<name>.json`` first, the text guardrail (a block skips the
   sample, exit stays 0; with --no-keep-going it raises), controls, chunks of 93 frames,
   ``<name>_control_<key>.mp4``, ``<name>.mp4``, ``<name>.txt``.  Any other error aborts the
   process: later samples never run.
"""

from __future__ import annotations

import json
import os
import sys
import time

from . import clock, timing
from . import validation as v
from .cli import stderr, tyro_error
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

MODEL = "Cosmos Transfer 2.5"
BANNER = banner(MODEL)
PYDANTIC = "2.11"  # the version upstream's uv.lock pins: it appears in the error links
CONTROL_KEYS = ["edge", "vis", "depth", "seg"]
CHUNK_DEFAULT = 93
NUM_MAX_FRAMES = 5000
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm")
DEFAULT_NEGATIVE_PROMPT = (
    "The video captures a game playing, with bad crappy graphics and cartoonish frames. It represents a recording of "
    "old outdated games. The lighting looks very fake. The textures are very raw and basic. The geometries are very "
    "primitive. The images are very pixelated and of poor CG quality. There are many subtitles in the footage. "
    "Overall, the video is unrealistic at all."
)
# (W, H) buckets of cosmos_transfer2/_src/predict2/datasets/utils.py, by resolution and aspect ratio
RES_SIZE = {
    "720": {"1,1": (960, 960), "4,3": (960, 704), "3,4": (704, 960), "16,9": (1280, 704), "9,16": (704, 1280)},
    "480": {"1,1": (480, 480), "4,3": (640, 480), "3,4": (480, 640), "16,9": (768, 432), "9,16": (432, 768)},
}
CHECKPOINTS = {  # model key -> checkpoint uuid (cosmos_transfer2/config.py MODEL_CHECKPOINTS)
    "edge": "61f5694b-0ad5-4ecd-8ad7-c8545627d125",
    "depth": "626e6618-bfcd-4d9a-a077-1409e2ce353f",
    "seg": "5136ef49-6d8d-42e8-8abf-7dac722a304a",
    "vis": "ba2f44f2-c726-4fe7-949f-597069d9b91c",
    "edge/distilled": "41f07f13-f2e4-4e34-ba4c-86f595acbc20",
}
MULTICONTROL_EXPERIMENT = "multibranch_720p_t24_spaced_layer4_cr1pt1_rectified_flow_inference"

# where upstream logs from: (module, path, line, function)
_INF = "cosmos_transfer2.inference"
_INF_P = "cosmos_transfer2/inference.py"
W_FOUND = (_INF, _INF_P, 146, "__init__")
W_MULTI = (_INF, _INF_P, 148, "__init__")
W_CONFIG = (_INF, _INF_P, 156, "__init__")
W_GENERATING = (_INF, _INF_P, 163, "generate")
W_PROCESSING = (_INF, _INF_P, 167, "generate")
W_BENCH = (_INF, _INF_P, 173, "generate")
W_ARGS = (_INF, _INF_P, 208, "_generate_sample")
W_GUARD = (_INF, _INF_P, 213, "_generate_sample")
W_BLOCKED = (_INF, _INF_P, 217, "_generate_sample")
W_PASSED = (_INF, _INF_P, 223, "_generate_sample")
W_BLOCKED_NEG = (_INF, _INF_P, 231, "_generate_sample")
W_PASSED_NEG = (_INF, _INF_P, 237, "_generate_sample")
W_GUARD_OFF = (_INF, _INF_P, 239, "_generate_sample")
W_PATHS = (_INF, _INF_P, 242, "_generate_sample")
W_DISTILLED_LONG = (_INF, _INF_P, 299, "_generate_sample")
W_CONTROL_SAVED = (_INF, _INF_P, 311, "_generate_sample")
W_MASK_SAVED = (_INF, _INF_P, 316, "_generate_sample")
W_VGUARD = (_INF, _INF_P, 319, "_generate_sample")
W_VPASSED = (_INF, _INF_P, 329, "_generate_sample")
W_VGUARD_OFF = (_INF, _INF_P, 335, "_generate_sample")
W_SAVED = (_INF, _INF_P, 343, "_generate_sample")
W_LOGFILES = ("cosmos_oss.init", "packages/cosmos-oss/cosmos_oss/init.py", 93, "_init_log_files")
_PIPE = "cosmos_transfer2._src.transfer2.inference.inference_pipeline"
_PIPE_P = "cosmos_transfer2/_src/transfer2/inference/inference_pipeline.py"
W_CHUNK = (_PIPE, _PIPE_P, 554, "generate_img2world")
W_SEED = (_PIPE, _PIPE_P, 640, "generate_img2world")
W_LOAD_INPUT = (_PIPE, _PIPE_P, 472, "generate_img2world")
W_GUARDRAIL_PRESET = ("cosmos_transfer2._src.imaginaire.auxiliary.guardrail.common.presets",
                      "cosmos_transfer2/_src/imaginaire/auxiliary/guardrail/common/presets.py", 59,
                      "run_text_guardrail")
CONSOLE_INCLUDE = ["cosmos_transfer2._src.imaginaire.utils.checkpoint_db", "cosmos_transfer2._src.imaginaire.trainer",
                   "*.callbacks.*"]
CONSOLE_EXCLUDE = ["*._*", "projects.*", "cosmos_transfer2._src.imaginaire.*"]


# --------------------------------------------------------------------------- the spec schema


def _control_schema(extra):
    schema = {
        "control_path": v.Field(v.file_path(), None, nullable=True),
        "control_weight": v.Field(v.number(ge=0.0, le=1.0), 1.0),
        "mask_path": v.Field(v.file_path(), None, nullable=True),
        "mask_prompt": v.Field(v.string(), None, nullable=True),
    }
    schema.update(extra)
    return schema


_THRESHOLD = v.literal(*STRENGTHS)
CONTROL_SCHEMAS = {
    "edge": ("EdgeConfig", _control_schema({"preset_edge_threshold": v.Field(_THRESHOLD, "medium")})),
    "depth": ("DepthConfig", _control_schema({})),
    "vis": ("BlurConfig", _control_schema({"preset_blur_strength": v.Field(_THRESHOLD, "medium")})),
    "seg": ("SegConfig", _control_schema({"control_prompt": v.Field(v.string(), None, nullable=True)})),
}


def _int_literal(*choices):
    as_int, lit = v.integer(), v.literal(*choices)

    def check(value, loc, errors):
        got = as_int(value, loc, []) if not isinstance(value, bool) else value
        return lit(got if got is not v._BAD else value, loc, errors)
    return check


def _file_or_dir():
    def check(value, loc, errors):
        if isinstance(value, str) and os.path.isdir(value):
            return os.path.abspath(value)
        return v.file_path()(value, loc, errors)
    return check


def sample_schema(smoke=False):
    """InferenceArguments (cosmos_transfer2/config.py), field by field, in pydantic's order."""
    s = {
        "name": v.Field(v.string()),
        "prompt_path": v.Field(v.file_path(), None, nullable=True),
        "prompt": v.Field(v.string()),
        "negative_prompt": v.Field(v.string(), DEFAULT_NEGATIVE_PROMPT),
        "seed": v.Field(v.integer(), 2025),
        "guidance": v.Field(v.integer(ge=0, le=7), 3),
        "video_path": v.Field(v.file_path()),
        "max_frames": v.Field(v.integer(gt=0), None, nullable=True),
        "context_frame_index": v.Field(v.integer(gt=0), None, nullable=True),
        "image_context_path": v.Field(v.file_path(), None, nullable=True),
        "num_conditional_frames": v.Field(_int_literal(0, 1, 2), 1),
        "resolution": v.Field(v.string(), "720"),
        "sigma_max": v.Field(v.string(), None, nullable=True),
        "num_video_frames_per_chunk": v.Field(v.integer(gt=0), CHUNK_DEFAULT),
        "num_steps": v.Field(v.integer(gt=0), 1 if smoke else 35),
        "show_control_condition": v.Field(v.boolean(), False),
        "show_input": v.Field(v.boolean(), False),
        "keep_input_resolution": v.Field(v.boolean(), True),
    }
    for key in ("edge", "depth", "vis", "seg"):
        title, schema = CONTROL_SCHEMAS[key]
        # control blocks take pydantic's default extra="ignore": a T1-style input_control is dropped
        s[key] = v.Field(v.model(title, schema, forbid_extra=False), None, nullable=True)
    s["guided_generation_mask"] = v.Field(_file_or_dir(), None, nullable=True)
    s["guided_generation_step_threshold"] = v.Field(v.integer(), 25)
    s["guided_generation_foreground_labels"] = v.Field(v.list_of(v.integer()), None, nullable=True)
    return s


def hint_keys(sample):
    return [k for k in CONTROL_KEYS if sample.get(k) is not None]


def post_init(sample):
    """InferenceArguments.model_post_init: the two checks pydantic reports as value errors."""
    if not hint_keys(sample):
        return "No controls provided, please provide at least one control key (edge, blur, depth, seg)"
    if "vis" in hint_keys(sample) and sample.get("image_context_path"):
        return ("vis control and image_context_path are both used to transfer style. Using these modes together "
                "leads to conflicts. Please only provide one")
    return None


class SpecExit(SystemExit):
    """A validation failure upstream reports on stderr and ends with sys.exit(1)."""


def load_file(path, override, smoke=False):
    """CommonInferenceArguments._from_file: one file -> validated samples (cwd = the file's folder meanwhile)."""
    suffix = os.path.splitext(path)[1]
    if suffix == ".json":
        with open(path, encoding="utf-8") as f:
            data_list = [json.loads(f.read())]
    elif suffix == ".jsonl":
        with open(path, encoding="utf-8") as f:
            data_list = [json.loads(line) for line in f.read().splitlines()]  # no blank-line filter upstream
    else:
        raise ValueError(f"Unsupported file extension: {suffix}")
    cwd = os.getcwd()
    os.chdir(os.path.dirname(os.path.abspath(path)))
    out = []
    for i, data in enumerate(data_list):
        merged = data | override  # a non-object line fails here, as upstream's `data | override_data`
        merged = dict(merged)
        if merged.get("prompt") is None and merged.get("prompt_path") is not None:
            # the "before" validator reads the prompt file itself (a missing file is a raw FileNotFoundError)
            with open(merged["prompt_path"]) as f:
                merged["prompt"] = f.read().strip()
        try:
            out.append(v.validate(sample_schema(smoke), merged, "InferenceArguments", PYDANTIC, after=post_init))
        except v.ValidationError as e:
            stderr(f"Error validating parameters from '{path}' at line {i}\n{e}")
            raise SpecExit(1) from None
    os.chdir(cwd)
    return out


def load_samples(paths, override, smoke=False):
    """from_files: every file in order, then unique names; -> (samples, batch hint keys in CONTROL_KEYS order)."""
    if not paths:
        stderr("Error: No inference parameter files")
        raise SpecExit(1)
    samples = []
    for path in paths:
        samples.extend(load_file(path, override, smoke))
    if not samples:
        stderr("Error: No inference samples")
        raise SpecExit(1)
    names = set()
    keys = set()
    for s in samples:
        if s["name"] in names:
            stderr(f"Error: Inference samplename {s['name']} is not unique")
            raise SpecExit(1)
        names.add(s["name"])
        keys.update(hint_keys(s))
    return samples, [k for k in CONTROL_KEYS if k in keys]


# --------------------------------------------------------------------------- the command line (tyro)

_SETUP_BOOL = {"disable-guardrails": False, "offload-guardrail-models": False, "keep-going": True, "profile": False,
               "benchmark": False, "enable-parallel-tokenizer": False}
_SETUP_VALUE = {"output-dir", "model", "checkpoint-path", "experiment", "config-file", "context-parallel-size",
                "compile-tokenizer", "parallel-tokenizer-grid"}
# sample fields a CLI flag overrides in every sample (InferenceOverrides): name -> kind
_OVERRIDES = {
    "prompt-path": "str", "prompt": "str", "negative-prompt": "str", "seed": "int", "guidance": "int",
    "video-path": "str", "max-frames": "int", "context-frame-index": "int", "image-context-path": "str",
    "num-conditional-frames": "int", "resolution": "str", "sigma-max": "str", "num-video-frames-per-chunk": "int",
    "num-steps": "int", "show-control-condition": "bool", "show-input": "bool", "keep-input-resolution": "bool",
    "guided-generation-mask": "str", "guided-generation-step-threshold": "int",
    "guided-generation-foreground-labels": "ints",
}


def model_choices():
    names = ["edge", "depth", "seg", "vis"]
    if os.environ.get("COSMOS_EXPERIMENTAL_CHECKPOINTS", "0") not in ("", "0"):
        names.append("edge/distilled")
    return names


class CliError(Exception):
    pass


def parse_cli(args, prog="inference.py"):
    """tyro's view of examples/inference.py -> (setup dict, overrides dict); SystemExit(2) on a bad line."""
    setup = {k.replace("-", "_"): d for k, d in _SETUP_BOOL.items()}
    setup.update({"output_dir": None, "model": "edge", "checkpoint_path": None, "experiment": None, "config_file": "",
                  "context_parallel_size": None, "compile_tokenizer": "NONE", "parallel_tokenizer_grid": (-1, -1)})
    override = {}
    inputs = []
    i = 0
    try:
        while i < len(args):
            arg = args[i]
            if arg in ("-h", "--help"):
                sys.stdout.write(f"usage: {prog} [-h] -i PATH [PATH ...] -o PATH [OPTIONS]\n\n"
                                 f"{BANNER}\n"
                                 "The emulator takes Transfer 2.5's flags; see docs/models/transfer2.5.md.\n")
                raise SystemExit(0)
            value = None
            if arg.startswith("--") and "=" in arg:
                arg, value = arg.split("=", 1)
            name = {"-i": "input-files", "-o": "output-dir"}.get(arg, arg[2:] if arg.startswith("--") else None)
            if name is None:
                raise CliError(f"Unrecognized options: {arg}")
            name = name.replace("_", "-")

            def take(value=value, arg=arg):
                nonlocal i
                if value is not None:
                    return value
                if i + 1 >= len(args) or (args[i + 1].startswith("--") and len(args[i + 1]) > 2):
                    raise CliError(f"Missing value for {arg}")
                i += 1
                return args[i]
            if name == "input-files":
                got = [value] if value is not None else []
                while value is None and i + 1 < len(args) and not args[i + 1].startswith("-"):
                    i += 1
                    got.append(args[i])
                if not got:
                    raise CliError(f"Missing value for {arg}")
                inputs.extend(got)
            elif name in _SETUP_BOOL or (name.startswith("no-") and name[3:] in _SETUP_BOOL):
                key = name[3:] if name.startswith("no-") else name
                setup[key.replace("-", "_")] = not name.startswith("no-")
            elif name in _SETUP_VALUE:
                raw = take()
                key = name.replace("-", "_")
                if name == "model" and raw not in model_choices():
                    raise CliError(f"Invalid choice: '{raw}' for --model (choose from {', '.join(model_choices())})")
                if name == "context-parallel-size":
                    if not raw.isdigit() or int(raw) < 1:
                        raise CliError(f"Invalid value '{raw}' for --context-parallel-size (a positive integer)")
                    raw = int(raw)
                if name == "compile-tokenizer" and raw not in ("NONE", "MODERATE", "AGGRESSIVE"):
                    raise CliError(f"Invalid choice: '{raw}' for --compile-tokenizer "
                                   "(choose from NONE, MODERATE, AGGRESSIVE)")
                if name == "parallel-tokenizer-grid":
                    second = args[i + 1] if i + 1 < len(args) else ""
                    try:
                        raw = (int(raw), int(second))
                    except ValueError:
                        raise CliError("--parallel-tokenizer-grid takes two integers") from None
                    i += 1
                setup[key] = raw
            elif name in _OVERRIDES:
                kind = _OVERRIDES[name]
                key = name.replace("-", "_")
                if kind == "ints":
                    got = []
                    while i + 1 < len(args) and not args[i + 1].startswith("-"):
                        i += 1
                        got.append(args[i])
                    try:
                        override[key] = [int(x) for x in got]
                    except ValueError:
                        raise CliError(f"Invalid value for --{name}: integers expected") from None
                else:
                    raw = take()
                    if kind == "int":
                        try:
                            raw = int(raw)
                        except ValueError:
                            raise CliError(f"Invalid value '{raw}' for --{name} (an integer)") from None
                    elif kind == "bool":
                        if raw not in ("True", "False"):
                            raise CliError(f"Invalid choice: '{raw}' for --{name} (choose from True, False)")
                        raw = raw == "True"
                    override[key] = raw
            else:
                raise CliError(f"Unrecognized options: {arg}")
            i += 1
    except CliError as e:
        tyro_error(prog, "Parsing error", [str(e)])
        raise SystemExit(2) from None
    missing = [flag for flag, ok in (("-i/--input-files", inputs), ("-o/--output-dir", setup["output_dir"])) if not ok]
    if missing:
        tyro_error(prog, "Required options", [f"Required options: {', '.join(missing)}"])
        raise SystemExit(2)
    setup["input_files"] = inputs
    return setup, override


# --------------------------------------------------------------------------- the emulated run


def _bucket(resolution, width, height):
    sizes = RES_SIZE.get(resolution, RES_SIZE["720"])
    ratio = width / height
    keys = ["16,9", "4,3", "1,1", "3,4", "9,16"]
    values = [16 / 9, 4 / 3, 1.0, 3 / 4, 9 / 16]
    best = min(range(5), key=lambda j: (values[j] - ratio) ** 2)
    return sizes[keys[best]]


def _even(x):
    return max(2, int(x) - int(x) % 2)


class Run:
    def __init__(self, setup, samples, batch_keys, ctx, knobs, media, script, argv):
        self.setup, self.samples, self.batch_keys = setup, samples, batch_keys
        self.ctx, self.knobs, self.media, self.script, self.argv = ctx, knobs, media, script, argv
        self.out = setup["output_dir"]
        self.log = ModelLog(CONSOLE_INCLUDE, CONSOLE_EXCLUDE)
        self.distilled = setup["model"] == "edge/distilled"
        self.guardrails = not setup["disable_guardrails"]
        self.world = int(os.environ.get("WORLD_SIZE", "1") or 1)
        self.cp = setup["context_parallel_size"] or self.world
        names = {s["name"] for s in samples}
        # a sample named "emulator" owns <out>/emulator.json (its spec dump); the sidecar steps aside
        self.sidecar_path = os.path.join(self.out, SIDECAR_NAME if "emulator" not in names else "cosmos-emulator.json")
        self.record = {
            "emulator": "cosmos-emulator", "is_model_output": False, "model": MODEL,
            "note": "CPU stand-in for Cosmos Transfer 2.5: every video here is the input video re-encoded with a "
                    "visible 'COSMOS EMULATOR' label and a colour look (controls: ffmpeg filters); NOT a model output.",
            "command": [script, *argv], "hint_keys": batch_keys, "multicontrol": len(batch_keys) > 1,
            "guardrails": self.guardrails, "context_parallel_size": self.cp, "samples": {},
        }

    def emu(self, msg):
        self.log.emu(msg)

    # -- the model
    def load(self):
        s = self.setup
        os.makedirs(self.out, exist_ok=True)
        self.log.info(W_LOGFILES, f"Log saved to {os.path.join(self.out, 'console.log')}")
        self.log.open_files(self.out, first_lines=[BANNER])
        if len(self.batch_keys) == 1:
            key = self.batch_keys[0] + ("/distilled" if self.distilled else "")
            if key not in CHECKPOINTS:
                raise KeyError(f"ModelKey(variant=<ModelVariant.{self.batch_keys[0].upper()}: "
                               f"'{self.batch_keys[0]}'>, distilled=True)")
            checkpoints = [s["checkpoint_path"] or CHECKPOINTS[key]]
        else:
            for k in CONTROL_KEYS:  # all four branches, even with weight 0
                key = k + ("/distilled" if self.distilled else "")
                if key not in CHECKPOINTS:
                    raise KeyError(f"ModelKey(variant=<ModelVariant.{k.upper()}: '{k}'>, distilled=True)")
            checkpoints = [CHECKPOINTS[k] for k in CONTROL_KEYS]
            if s["checkpoint_path"]:
                self.emu(f"WARNING: --checkpoint-path is ignored with {len(self.batch_keys)} hint keys in the batch: "
                         "the multi-control model loads its four registered checkpoints")
        networks = len(checkpoints)
        self.emu(f"loading (simulated): checkpoints={','.join(checkpoints)}"
                 + (f" experiment={MULTICONTROL_EXPERIMENT}" if networks > 1 else ""))
        k = self.knobs
        if k.load_seconds:
            clock.wait(k.load_seconds)
        for idx in range(networks):
            if k.load_per_control:
                clock.wait(k.load_per_control)
            if k.oom_above is not None and idx >= k.oom_above:
                self.emu(f"simulated OOM: the model has {networks} control branches > "
                         f"COSMOS_EMULATOR_OOM_ABOVE_CONTROLS={k.oom_above}")
                raise OutOfMemoryError(OOM_MESSAGE)
        self.load_seconds = timing.load_seconds(k.load_seconds, k.load_per_control, networks)
        self.emu(f"model loaded: controls={','.join(self.batch_keys)} branches={networks} "
                 f"load_seconds={self.load_seconds:.2f}")
        self.log.info(W_FOUND, f"Found {len(self.batch_keys)} hint keys across all samples")
        if len(self.batch_keys) > 1:
            self.log.warning(W_MULTI, "Loading the multicontrol model. Multicontrol inference is not strictly equal "
                                      "to single control")
            self.emu(f"multi-control: the batch's hint keys {','.join(self.batch_keys)} switch this process to the "
                     "four-branch multicontrol model (missing keys get weight 0.0)")
        config = os.path.join(self.out, "config.yaml")
        with open(config, "w", encoding="utf-8") as f:
            f.write("# cosmos-emulator: CPU stand-in, not a model config (upstream writes the model's LazyConfig)\n"
                    f"emulator: cosmos-emulator\nis_model_output: false\nmodel: {s['model']}\n"
                    f"experiment: {s['experiment'] or (MULTICONTROL_EXPERIMENT if networks > 1 else 'registered')}\n"
                    f"checkpoints: [{', '.join(checkpoints)}]\nhint_keys: [{', '.join(self.batch_keys)}]\n")
        self.log.info(W_CONFIG, f"Saved config to {config}")

    # -- the batch
    def generate(self):
        samples = self.samples
        self.log.info(W_GENERATING, f"Generating {len(samples)} samples: {[s['name'] for s in samples]}")
        for i, sample in enumerate(samples):
            self.log.info(W_PROCESSING, f"[{i + 1}/{len(samples)}] Processing sample {sample['name']}")
            self.sample(i, sample)
        if self.setup["benchmark"]:
            for text in ("=" * 50, "BENCHMARK RESULTS", "=" * 50, "Benchmark runs:",
                         "(cosmos-emulator: simulated timings only)", "=" * 50):
                self.log.info(W_BENCH, text)

    def _save(self, name, status, **fields):
        self.record["samples"][name] = {"status": status, **fields}
        write_sidecar(self.sidecar_path, self.record)

    def sample(self, index, sample):
        name = sample["name"]
        base = os.path.join(self.out, name)
        n = len(self.samples)
        with open(f"{base}.json", "w", encoding="utf-8") as f:  # before the guardrail: blocked samples have it too
            f.write(json.dumps(sample, ensure_ascii=False, separators=(",", ":")))
        self.log.info(W_ARGS, f"Saved arguments to {base}.json")
        prompt = sample["prompt"]
        negative = None if self.distilled else sample["negative_prompt"]
        if self.guardrails:
            self.log.info(W_GUARD, "Running guardrail check on prompt...")
            word = self.knobs.block_word
            checks = ((prompt, W_BLOCKED, W_PASSED, "Prompt",
                       (bool(word) and word in prompt) or index in self.knobs.guardrail_lines),
                      (negative, W_BLOCKED_NEG, W_PASSED_NEG, "Negative prompt",
                       negative is not None and bool(word) and word in negative))
            for text, where_blocked, where_passed, what, blocked in checks:
                if text is None:
                    continue
                if blocked:
                    # upstream's presets module logs this one; its "._" name keeps it out of console.log
                    self.log.critical(W_GUARDRAIL_PRESET, f"GUARDRAIL BLOCKED: Blocklist: (cosmos-emulator) the "
                                                          f"{what.lower()} holds the block word or the sample index is "
                                                          "listed in COSMOS_EMULATOR_GUARDRAIL_LINES")
                    message = f"Guardrail blocked generation. {what}: {text}"
                    self.log.critical(where_blocked, message)
                    if self.cp > 1:
                        self.emu(f"WARNING: with context parallel size {self.cp}, upstream's ranks 1..{self.cp - 1} "
                                 "would wait in collectives here (a hang); the emulator, one process, skips the sample")
                    self.emu(f"sample {index + 1}/{n} {name} blocked by guardrail")
                    self._save(name, "blocked", spec=f"{name}.json", message=message)
                    if self.setup["keep_going"]:
                        return None
                    raise Exception(message)
                self.log.success(where_passed, f"Passed guardrail on {what.lower()}")
        else:
            self.log.warning(W_GUARD_OFF, "Guardrail checks on prompt are disabled")
        keys = hint_keys(sample)
        modalities = {}
        for k in keys:
            modalities[k] = sample[k]["control_path"]
            modalities[f"{k}_mask"] = sample[k]["mask_path"]
            modalities[f"{k}_mask_prompt"] = sample[k]["mask_prompt"]
        self.log.info(W_PATHS, f"Processing the following paths: {modalities}")
        return self._generate(index, sample, keys, base)

    def _generate(self, index, sample, keys, base):
        media, k = self.media, self.knobs
        name = sample["name"]
        n = len(self.samples)
        video = sample["video_path"]
        self.log.debug(W_LOAD_INPUT, "Loading input video...")
        is_image = os.path.splitext(video)[1].lower() in IMAGE_EXTENSIONS
        info = media.probe(video)
        fps = 1 if is_image else int(info["fps"])
        frames = 1 if is_image else min(info["frames"], NUM_MAX_FRAMES, sample["max_frames"] or NUM_MAX_FRAMES)
        bucket = _bucket(sample["resolution"], info["width"], info["height"])
        size = (_even(info["width"]), _even(info["height"])) if sample["keep_input_resolution"] else bucket
        chunk = sample["num_video_frames_per_chunk"]
        overlap = sample["num_conditional_frames"]
        chunks = timing.transfer25_chunks(frames, chunk, overlap)
        ext = "jpg" if frames == 1 else "mp4"
        if sample["show_control_condition"] or sample["show_input"]:
            self.emu("WARNING: show_control_condition/show_input are not emulated: the output is the plain video")
        if sample["sigma_max"] is not None:
            float(sample["sigma_max"])  # upstream: float(sample.sigma_max) (a non-number raises ValueError here)
        # controls: a given control_path is read (up to 5000 frames) and sliced per chunk
        control_frames = {}
        for key in keys:
            path = sample[key]["control_path"]
            control_frames[key] = min(media.probe(path)["frames"], NUM_MAX_FRAMES) if path else frames
        steps = sample["num_steps"]
        per_chunk = timing.chunk_seconds(k.seconds_per_chunk, steps, len(self.batch_keys), k.control_factor)
        seed = sample["seed"]
        for c in range(chunks):
            start = 0 if c == 0 else c * (chunk - overlap)
            for available in control_frames.values():
                if available <= start:
                    raise ValueError("No input frames; cannot pad. Verify that video frame counts match.")
            self.log.info(W_CHUNK, f"Generating chunk {c + 1}/{chunks}")
            self.log.info(W_SEED, f"Seed: {seed}")
            self.emu(f"sample {index + 1}/{n} {name} chunk {c + 1}/{chunks}"
                     + (f" (simulated {per_chunk:.2f} s)" if per_chunk else ""))
            if per_chunk:
                clock.wait(per_chunk)
        if self.distilled and frames > 93:
            self.log.warning(W_DISTILLED_LONG, f"Generated output has {frames} frames (> 93). The distilled Transfer "
                                               "2.5 model is not trained to support auto-regressive generation")

        def write(src, path, filters, pre=()):
            if ext == "jpg":
                media.still(src, path, size[0], size[1], filters, pre=pre)
            else:
                media.encode(src, path, size[0], size[1], frames, fps, filters, pre=pre)

        controls = {}
        for key in keys:
            block = sample[key]
            path = f"{base}_control_{key}.{ext}"
            if block["control_path"]:
                write(block["control_path"], path, [])
            else:
                strength = block.get("preset_edge_threshold") or block.get("preset_blur_strength") or "medium"
                if key == "seg":
                    self.emu(f"seg control computed on the fly (upstream: GroundingDINO + SAM2 with prompt "
                             f"{(block.get('control_prompt') or ' '.join(sample['prompt'].split()[:128]))!r})")
                pre, post = control_filters(key, strength, size[1])
                write(video, path, post, pre=pre)
            self.log.info(W_CONTROL_SAVED, f"{key} control video saved to {path}")
            controls[key] = {"control_path": block["control_path"], "control_weight": block["control_weight"],
                             "generated": not block["control_path"], "file": os.path.basename(path)}
        for key in keys:
            if sample[key]["mask_prompt"] is not None:
                path = f"{base}_mask_{key}.{ext}"
                pre, post = control_filters("mask", "medium", size[1])
                write(video, path, post, pre=pre)
                self.log.info(W_MASK_SAVED, f"Mask for {key} saved to {path}")
        if self.guardrails:
            self.log.info(W_VGUARD, "Running guardrail check on video...")
            self.log.success(W_VPASSED, "Passed guardrail on generated video")
        else:
            self.log.warning(W_VGUARD_OFF, "Guardrail checks on video are disabled")
        weights = {key: (sample[key]["control_weight"] if key in keys else 0.0) for key in self.batch_keys}
        token = f"{index}|{name}|{sample['prompt']}" if k.variation else None
        the_look, filters, effective = look(seed, weights, token)
        out_path = f"{base}.{ext}"
        write(video, out_path, filters)
        with open(f"{base}.txt", "w", encoding="utf-8") as f:
            f.write(sample["prompt"])
        self.log.success(W_SAVED, f"Generated video saved to {out_path}")
        self.emu(f"sample {index + 1}/{n} {name} done: {out_path}")
        self._save(name, "generated", output=os.path.basename(out_path), spec=f"{name}.json",
                   prompt_file=f"{name}.txt", controls=controls, effective_weights=effective,
                   width=size[0], height=size[1], frames=frames, fps=fps, chunks=chunks, num_steps=sample["num_steps"],
                   guidance=None if self.distilled else sample["guidance"], seed=seed, sigma_max=sample["sigma_max"],
                   resolution=sample["resolution"], look=the_look)
        return out_path


def run(script, script_args, ctx):
    _out(BANNER)
    knobs = Knobs()
    setup, override = parse_cli(list(script_args), prog=os.path.basename(script))
    smoke = os.environ.get("COSMOS_SMOKE", "0") not in ("", "0")
    if smoke and not setup["disable_guardrails"]:
        setup["disable_guardrails"] = True
    samples, batch_keys = load_samples(setup["input_files"], override, smoke)
    if setup["benchmark"] and len(samples) == 1:
        samples = samples * 4  # upstream repeats a lone sample 4 times (the first is warm-up)
    if smoke:
        samples = samples[:1]
    media = Media(find_ffmpeg(), knobs)
    run_ = Run(setup, samples, batch_keys, ctx, knobs, media, script, list(script_args))
    t0 = time.time()
    try:
        run_.load()
        run_.generate()
        outputs = sum(1 for r in run_.record["samples"].values() if r["status"] == "generated")
        run_.emu(f"finished: samples={len(samples)} outputs={outputs} elapsed={time.time() - t0:.2f}s")
    finally:
        run_.log.close()
    return 0


__all__ = ["EmulatorConfigError", "load_samples", "parse_cli", "run", "sample_schema"]
