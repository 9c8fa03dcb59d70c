"""Cosmos Transfer 1 (nvidia-cosmos/cosmos-transfer1 at 5005e82): transfer.py and the upsampler.

See docs/models/transfer1.md for the contract this follows and docs/emulator.md for what
is emulated.  Behaviour here is frozen: tests/test_emulator.py pins it.
"""

from __future__ import annotations

import argparse
import copy
import errno
import hashlib
import json
import math
import os
import shutil
import sys
import time

from . import clock
from .common import (
    OOM_MESSAGE,
    SIDECAR_NAME,
    TAG,
    Knobs,
    Media,
    OutOfMemoryError,
    _out,
    banner,
    emu,
    find_ffmpeg,
)
from .common import write_sidecar as _write_sidecar

BANNER = banner("Cosmos Transfer 1")

NUM_MAX_FRAMES = 5000
CHUNK_FRAMES = 121
VIDEO_RES_SIZE_INFO = {
    "1,1": (960, 960),
    "4,3": (960, 704),
    "3,4": (704, 960),
    "16,9": (1280, 704),
    "9,16": (704, 1280),
}
_ASPECT_KEYS = ["16,9", "4,3", "1,1", "3,4", "9,16"]
_ASPECT_VALUES = [16 / 9, 4 / 3, 1.0, 3 / 4, 9 / 16]

valid_hint_keys = {"vis", "seg", "edge", "depth", "keypoint", "upscale", "hdmap", "lidar"}
default_model_names = {
    "vis": "nvidia/Cosmos-Transfer1-7B/vis_control.pt",
    "seg": "nvidia/Cosmos-Transfer1-7B/seg_control.pt",
    "edge": "nvidia/Cosmos-Transfer1-7B/edge_control.pt",
    "depth": "nvidia/Cosmos-Transfer1-7B/depth_control.pt",
    "keypoint": "nvidia/Cosmos-Transfer1-7B/keypoint_control.pt",
    "upscale": "nvidia/Cosmos-Transfer1-7B/4kupscaler_control.pt",
    "hdmap": "nvidia/Cosmos-Transfer1-7B-Sample-AV/t2w_hdmap_control.pt",
    "lidar": "nvidia/Cosmos-Transfer1-7B-Sample-AV/t2w_lidar_control.pt",
}
DISTILLED_EDGE_CKPT = "nvidia/Cosmos-Transfer1-7B/edge_control_distilled.pt"
BASE_CKPT = "nvidia/Cosmos-Transfer1-7B/base_model.pt"
BASE_AV_CKPT = "nvidia/Cosmos-Transfer1-7B-Sample-AV/base_model.pt"
GENERATED_HINTS = ("vis", "edge", "depth", "seg", "keypoint")
DEFAULT_UPSAMPLER_PROMPT = "describe the following images"

# where the real messages come from (for the model-style log prefix)
_T = "cosmos_transfer1/diffusion/inference/transfer.py"
_U = "cosmos_transfer1/diffusion/inference/inference_utils.py"
_P = "cosmos_transfer1/diffusion/inference/world_generation_pipeline.py"
_R = "cosmos_transfer1/diffusion/inference/preprocessors.py"
W_PARSE = (_T, "parse_arguments")
W_DEMO = (_T, "demo")
W_VALIDATE = (_U, "validate_controlnet_specs")
W_CTRL = (_U, "get_ctrl_batch")
W_GENCTRL = (_U, "generate_control_input")
W_GEN = (_P, "generate")
W_RUN = (_P, "_run_model")
W_LOADNET = (_P, "_load_network")
W_UPS_INIT = (_P, "_init_prompt_upsampler")
W_UPS_PROC = (_P, "_process_prompt_upsampler")
W_PRE = (_R, "gen_input_control")
W_PRE_CALL = (_R, "__call__")


class _Log:
    """Prints lines shaped like cosmos_transfer1.utils.log (loguru) output."""

    def _emit(self, level, msg, where):
        path, func = where
        ts = time.strftime("%m-%d %H:%M:%S")
        line = sys._getframe(2).f_lineno
        _out(f"[{ts}|{level}|{path}:{line}:{func}] {msg}")

    def info(self, msg, where=W_DEMO):
        self._emit("INFO", msg, where)

    def warning(self, msg, where=W_DEMO):
        self._emit("WARNING", msg, where)

    def critical(self, msg, where=W_DEMO):
        self._emit("CRITICAL", msg, where)


log = _Log()


def detect_aspect_ratio(width, height):
    ratio = width / height
    best = min(range(len(_ASPECT_VALUES)), key=lambda i: (_ASPECT_VALUES[i] - ratio) ** 2)
    return _ASPECT_KEYS[best]


def bucket_size(width, height):
    return VIDEO_RES_SIZE_INFO[detect_aspect_ratio(width, height)]


def upsample_text(prompt, stats):
    base = (prompt or "").strip()
    if not base or base == DEFAULT_UPSAMPLER_PROMPT:
        base = "The video shows a scene"
    base = base.rstrip(" .")
    luma = stats["luma"]
    light = "dim" if luma < 70 else ("evenly lit" if luma < 170 else "brightly lit")
    r, g, b = stats["mean_rgb"]
    return (
        f"{base}. In the opening frames the scene is {light} (mean brightness {luma}/255), "
        f"with {stats['dominant']} as the dominant colour ({stats['dominant_share']}% of the frame, "
        f"mean RGB {r},{g},{b}) in a {stats['width']}x{stats['height']} view. The camera framing stays steady "
        f"and the lighting looks natural, rendered in realistic, finely detailed textures (cosmos-emulator)"
    )



# --------------------------------------------------------------------------- transfer.py: arguments


def build_transfer_parser(prog):
    parser = argparse.ArgumentParser(
        prog=prog, description="Control to world generation demo script", conflict_handler="resolve"
    )
    parser.add_argument(
        "--prompt",
        type=str,
        default="The video captures a stunning, photorealistic scene with remarkable attention to detail, giving it a "
        "lifelike appearance that is almost indistinguishable from reality. It appears to be from a high-budget 4K "
        "movie, showcasing ultra-high-definition quality with impeccable resolution.",
        help="prompt which the sampled video condition on",
    )
    parser.add_argument(
        "--negative_prompt",
        type=str,
        default="The video captures a game playing, with bad crappy graphics and cartoonish frames. It represents a "
        "recording of old outdated games. The lighting looks very fake. The textures are very raw and basic. The "
        "geometries are very primitive. The images are very pixelated and of poor CG quality. There are many "
        "subtitles in the footage. Overall, the video is unrealistic at all.",
        help="negative prompt which the sampled video condition on",
    )
    parser.add_argument("--input_video_path", type=str, default="", help="Optional input RGB video path")
    parser.add_argument(
        "--num_input_frames", type=int, default=1, choices=[1],
        help="Number of conditional frames for long video generation",
    )
    parser.add_argument("--sigma_max", type=float, default=70.0, help="sigma_max for partial denoising")
    strengths = ["very_low", "low", "medium", "high", "very_high"]
    parser.add_argument("--blur_strength", type=str, default="medium", choices=strengths, help="blur strength.")
    parser.add_argument(
        "--canny_threshold", type=str, default="medium", choices=strengths,
        help="blur strength of canny threshold applied to input. Lower means less blur or more detected edges, "
        "which means higher fidelity to input.",
    )
    parser.add_argument(
        "--controlnet_specs", type=str, required=True,
        help="Path to JSON file specifying multicontrolnet configurations",
    )
    parser.add_argument("--is_av_sample", action="store_true",
                        help="Whether the model is an driving post-training model")
    parser.add_argument("--checkpoint_dir", type=str, default="checkpoints",
                        help="Base directory containing model checkpoints")
    parser.add_argument(
        "--tokenizer_dir", type=str, default="Cosmos-Tokenize1-CV8x8x8-720p",
        help="Tokenizer weights directory relative to checkpoint_dir",
    )
    parser.add_argument("--video_save_name", type=str, default="output",
                        help="Output filename for generating a single video")
    parser.add_argument("--video_save_folder", type=str, default="outputs/",
                        help="Output folder for generating a batch of videos")
    parser.add_argument("--batch_input_path", type=str,
                        help="Path to a JSONL file of input prompts for generating a batch of videos")
    parser.add_argument("--batch_size", type=int, default=1, help="Batch size")
    parser.add_argument("--num_steps", type=int, default=35, help="Number of diffusion sampling steps")
    parser.add_argument("--guidance", type=float, default=5, help="Classifier-free guidance scale value")
    parser.add_argument("--fps", type=int, default=24, help="FPS of the output video")
    parser.add_argument("--seed", type=int, default=1, help="Random seed")
    parser.add_argument("--num_gpus", type=int, default=1, help="Number of GPUs used to run inference in parallel.")
    parser.add_argument("--offload_diffusion_transformer", action="store_true", help="Offload DiT after inference")
    parser.add_argument("--offload_text_encoder_model", action="store_true",
                        help="Offload text encoder model after inference")
    parser.add_argument("--offload_guardrail_models", action="store_true",
                        help="Offload guardrail models after inference")
    parser.add_argument("--upsample_prompt", action="store_true", help="Upsample prompt using Pixtral upsampler model")
    parser.add_argument("--offload_prompt_upsampler", action="store_true",
                        help="Offload prompt upsampler model after inference")
    parser.add_argument("--use_distilled", action="store_true", help="Use distilled ControlNet model variant")
    parser.add_argument("--save_input_noise", action="store_true", help="Save the input noise (used for distillation)")
    parser.add_argument("--benchmark", action="store_true",
                        help="Run generation several times and report the average time")
    return parser


def load_controlnet_specs(cfg):
    with open(cfg.controlnet_specs) as f:
        controlnet_specs_in = json.load(f)
    controlnet_specs = {}
    args = {}
    for hint_key, config in controlnet_specs_in.items():
        if hint_key in valid_hint_keys:
            controlnet_specs[hint_key] = config
        else:
            if type(config) == dict:  # noqa: E721  (same test as the real code)
                raise ValueError(f"Invalid hint_key: {hint_key}. Must be one of {valid_hint_keys}")
            args[hint_key] = config
    return controlnet_specs, args


def parse_arguments(prog, script_argv):
    parser = build_transfer_parser(prog)
    cmd_args = parser.parse_args(script_argv[1:])
    control_inputs, json_args = load_controlnet_specs(cmd_args)
    log.info(f"control_inputs: {json.dumps(control_inputs, indent=4)}", W_PARSE)
    log.info(f"args in json: {json.dumps(json_args, indent=4)}", W_PARSE)
    # the real rule: a spec value wins unless "--key" is literally one of the script's argv words
    for key in json_args:
        if f"--{key}" not in script_argv:
            setattr(cmd_args, key, json_args[key])
    log.info(f"final args: {json.dumps(vars(cmd_args), indent=4)}", W_PARSE)
    return cmd_args, control_inputs


def validate_controlnet_specs(cfg, controlnet_specs):
    checkpoint_dir = cfg.checkpoint_dir
    sigma_max = cfg.sigma_max
    input_video_path = cfg.input_video_path
    for hint_key, config in controlnet_specs.items():
        if hint_key not in valid_hint_keys:
            raise ValueError(f"Invalid hint_key: {hint_key}. Must be one of {valid_hint_keys}")
        if not input_video_path and sigma_max < 80:
            raise ValueError("Must have 'input_video' specified if sigma_max < 80")
        if not input_video_path and "input_control" not in config:
            raise ValueError(
                f"{hint_key} controlnet must have 'input_control' video specified if no 'input_video' specified."
            )
        if "ckpt_path" not in config:
            log.info(f"No checkpoint path specified for {hint_key}. Using default.", W_VALIDATE)
            if getattr(cfg, "use_distilled", False):
                if hint_key != "edge":
                    raise ValueError(f"No default distilled checkpoint for {hint_key}")
                config["ckpt_path"] = os.path.join(checkpoint_dir, DISTILLED_EDGE_CKPT)
            else:
                config["ckpt_path"] = os.path.join(checkpoint_dir, default_model_names[hint_key])
        if "control_weight" not in config:
            log.warning(f"No control weight specified for {hint_key}. Setting to 0.5.", W_VALIDATE)
            config["control_weight"] = "0.5"
        else:
            weight = config["control_weight"]
            if not isinstance(weight, str) or not weight.endswith(".pt"):
                try:
                    scalar_value = float(weight)
                    if scalar_value < 0:
                        raise ValueError(f"Control weight for {hint_key} must be non-negative.")
                except ValueError:
                    raise ValueError(  # noqa: B904  (as the real code: its traceback shows both errors)
                        f"Control weight for {hint_key} must be a valid non-negative float or a path to a .pt file."
                    )
    return controlnet_specs


def read_prompts_from_file(path):
    prompts = []
    with open(path) as f:
        for line in f:
            prompts.append(json.loads(line.strip()))
    return prompts


def _scalar_weight(weight):
    """Scalar control weight for the look; None for a .pt weight map (which must exist)."""
    if isinstance(weight, str) and weight.endswith(".pt"):
        if not os.path.exists(weight):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), weight)
        return None
    try:
        return float(weight)
    except (TypeError, ValueError):
        if isinstance(weight, str) and not os.path.exists(weight):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), weight)  # noqa: B904  (a traceback as the model's)
        return None


# --------------------------------------------------------------------------- transfer.py: the emulated model


_STRENGTH = {"very_low": 0, "low": 1, "medium": 2, "high": 3, "very_high": 4}


class Sample:
    """One JSONL line (or the single-mode input) after preprocessing."""

    def __init__(self, line_index, prompt, video_path, controls, folder):
        self.line_index = line_index
        self.prompt = prompt
        self.video_path = video_path
        self.controls = controls
        self.folder = folder
        self.generated = []
        self.frames = None
        self.size = None
        self.source = None
        self.source_fps = None
        self.upsampled = False


class EmulatedPipeline:
    def __init__(self, cfg, control_inputs, ctx, knobs, media):
        self.cfg = cfg
        self.control_inputs = control_inputs
        self.ctx = ctx
        self.knobs = knobs
        self.media = media
        self.prompt_upsampler = None
        self.upsampler_hint_key = None
        self.hint_details = None
        self.total_lines = 1
        self._load()
        if cfg.upsample_prompt and int(os.environ["RANK"]) == 0:
            self._init_prompt_upsampler()

    # -- loading
    def _load(self):
        cfg, knobs = self.cfg, self.knobs
        base = BASE_AV_CKPT if cfg.is_av_sample else BASE_CKPT
        # wall-clock marks around the simulated work: what a test subtracts as the emulator's own start-up and
        # output writing when it checks a calibration against the knobs
        emu(f"timing: simulated load begins at {time.time():.3f}")
        emu(f"loading (simulated): base={os.path.join(cfg.checkpoint_dir, base)} "
            f"controls={','.join(self.control_inputs)}")
        if knobs.load_seconds:
            clock.wait(knobs.load_seconds)
        n = len(self.control_inputs)
        for idx, (_hint, spec) in enumerate(self.control_inputs.items()):
            log.info(f"Loading ctrl model from ckpt_path: {spec['ckpt_path']}", W_LOADNET)
            if knobs.load_per_control:
                clock.wait(knobs.load_per_control)
            if knobs.oom_above is not None and idx >= knobs.oom_above:
                emu(f"simulated OOM: spec has {n} control networks > "
                    f"COSMOS_EMULATOR_OOM_ABOVE_CONTROLS={knobs.oom_above}")
                raise OutOfMemoryError(OOM_MESSAGE)
        if self.cfg.num_gpus > 1:
            log.info("Enabling CP in base model", W_LOADNET)
        self.load_seconds = knobs.load_seconds + knobs.load_per_control * n
        emu(f"model loaded: controls={','.join(self.control_inputs)} load_seconds={self.load_seconds:.2f}")

    def _init_prompt_upsampler(self):
        log.info("Initializing prompt upsampler...", W_UPS_INIT)
        if any(k in ("vis", "edge") for k in self.control_inputs):
            self.upsampler_hint_key = "vis"
            self.hint_details = "vis" if "vis" in self.control_inputs else "edge"
        elif any(k in ("seg", "depth") for k in self.control_inputs):
            self.upsampler_hint_key = next(k for k in self.control_inputs if k in ("seg", "depth"))
        else:
            self.upsampler_hint_key = None
        if self.upsampler_hint_key:
            self.prompt_upsampler = "emulated-pixtral"
        log.info(
            f"Prompt upsampler initialized with hint key: {self.upsampler_hint_key} "
            f"and hint details: {self.hint_details}",
            W_UPS_INIT,
        )

    def _process_prompt_upsampler(self, prompt, video_path, save_folder):
        if not self.prompt_upsampler:
            return prompt
        log.info(f"Upsampling prompt with controlnet: {self.upsampler_hint_key}", W_UPS_PROC)
        if self.upsampler_hint_key == "vis":
            given = self.control_inputs[self.hint_details].get("input_control", None)
            if given is not None:
                source = given
            else:
                hint_key = f"control_input_{self.hint_details}"
                log.info(
                    f"Generating control input for {hint_key} with blur strength {self.cfg.blur_strength} "
                    f"and canny threshold {self.cfg.canny_threshold}",
                    W_GENCTRL,
                )
                info = self.media.probe(video_path)
                source = f"{save_folder}/{hint_key}_upsampler.mp4"
                log.info(f"Saving control input to {source}", W_GENCTRL)
                w, h = info["width"] - info["width"] % 2, info["height"] - info["height"] % 2
                pre, post = _control_filters(self.hint_details, self.cfg, max(2, h))
                self.media.encode(video_path, source, max(2, w), max(2, h), min(10, info["frames"]), 24, post, pre=pre)
        else:
            source = self.control_inputs[self.upsampler_hint_key].get("input_control", None)
            if source is None:
                emu(
                    f"WARNING: the spec's {self.upsampler_hint_key} has no input_control; the real upsampler would get "
                    f"no video here (docs/models/transfer1.md) - the emulator reads the input video instead"
                )
                source = video_path
        return upsample_text(prompt, self.media.frame_stats(source))

    # -- guardrail
    def _blocked(self, prompt, line_index):
        word = self.knobs.block_word
        hit = bool(word) and word in prompt  # a None prompt fails here (TypeError), as a missing prompt would
        return hit or line_index in self.knobs.guardrail_lines

    # -- generation
    def generate(self, prompt, video_path, negative_prompt, control_inputs, save_folder, batch_size, samples):
        prompts = list(prompt)
        video_paths = list(video_path)
        assert len(video_paths) == batch_size, "Number of prompts and videos must match"
        assert len(control_inputs) == batch_size, "Number of control inputs must match batch size"
        log.info(f"Running batch generation with batch_size={batch_size}", W_GEN)
        if self.prompt_upsampler and int(os.environ["RANK"]) == 0:
            upsampled = []
            for i, (single_prompt, single_video_path) in enumerate(zip(prompts, video_paths)):
                log.info(f"Upsampling prompt {i+1}/{batch_size}: {single_prompt[:50]}...", W_GEN)
                sub = os.path.join(save_folder, f"video_{i}")
                os.makedirs(sub, exist_ok=True)
                new_prompt = self._process_prompt_upsampler(single_prompt, single_video_path, sub)
                upsampled.append(new_prompt)
                samples[i].upsampled = new_prompt != single_prompt
                log.info(f"Upsampled prompt {i+1}: {new_prompt[:50]}...", W_GEN)
            prompts = upsampled

        log.info("Running guardrail checks on all prompts", W_GEN)
        safe_indices = []
        for i, single_prompt in enumerate(prompts):
            if self._blocked(single_prompt, samples[i].line_index):
                log.critical(f"Input text prompt {i+1} is not safe", W_GEN)
                emu(f"line {samples[i].line_index}/{self.total_lines} blocked by guardrail")
            else:
                safe_indices.append(i)
        if not safe_indices:
            log.critical("All prompts failed safety checks", W_GEN)
            return None
        safe = [samples[i] for i in safe_indices]
        safe_prompts = [prompts[i] for i in safe_indices]

        log.info("Running text embedding on all prompts", W_GEN)
        for _ in range(0, len(safe_prompts), min(batch_size, 8)):
            log.info("Starting T5 compute", W_GEN)
            log.info("Completed T5 compute", W_GEN)
        log.info("Finish text embedding on prompt", W_GEN)
        log.info("Run generation", W_GEN)
        videos = self._run_model(safe, safe_prompts)
        log.info("Finish generation", W_GEN)
        log.info("Run guardrail on generated videos", W_GEN)
        return videos, safe_prompts

    def _run_model(self, samples, prompts):
        cfg, knobs = self.cfg, self.knobs
        log.info("Starting data augmentation", W_RUN)
        log.info(f"regional_prompts passed to _run_model: {getattr(self, 'regional_prompts', None) or []}", W_RUN)
        log.info(f"region_definitions passed to _run_model: {getattr(self, 'region_definitions', None) or []}", W_RUN)
        for s in samples:
            for hint, spec in s.controls.items():
                if spec.get("input_control") is not None:
                    log.info(f"reading control input {spec['input_control']} for hint {hint}", W_CTRL)
            log.info(f"Making all control and input videos to be length of {s.frames} frames.", W_CTRL)
            if not s.controls:
                raise KeyError("control_input_")
        ref = samples[0]
        for n, s in enumerate(samples[1:], start=1):
            for got, want in ((s.size[1], ref.size[1]), (s.size[0], ref.size[0]), (s.frames, ref.frames)):
                if got != want:
                    raise RuntimeError(
                        f"Sizes of tensors must match except in dimension 0. Expected size {want} but got size {got} "
                        f"for tensor number {n} in the list."
                    )
        log.info("Completed data augmentation", W_RUN)

        n_chunks = max(1, math.ceil((ref.frames - 1) / (CHUNK_FRAMES - 1)))
        steps = 1 if cfg.use_distilled else _as_float(cfg.num_steps, 35)
        networks = max(1, len(ref.controls))
        scale = networks if knobs.control_factor is None else 1 + knobs.control_factor * (networks - 1)
        per_chunk = knobs.seconds_per_chunk * (steps / 35.0) * scale
        if cfg.benchmark:
            per_chunk *= 4
        t0 = time.time()
        for c in range(n_chunks):
            log.info("Starting latent encoding", W_RUN)
            log.info("Completed latent encoding", W_RUN)
            log.info("Starting diffusion sampling", W_RUN)
            for s in samples:
                emu(f"line {s.line_index}/{self.total_lines} chunk {c + 1}/{n_chunks}"
                    + (f" (simulated {per_chunk:.2f} s)" if per_chunk else ""))
                if per_chunk:
                    clock.wait(per_chunk)
            log.info("Completed diffusion sampling", W_RUN)
            log.info("Starting VAE decode", W_RUN)
            log.info("Completed VAE decode", W_RUN)
        if cfg.benchmark:
            log.info(
                f"The benchmarked generation time for Cosmos-Transfer1 is {(time.time() - t0) / 4:.2f} seconds.", W_RUN
            )
        emu(f"timing: simulated generation ends at {time.time():.3f}")

        videos = []
        for s, final_prompt in zip(samples, prompts):
            videos.append(self._render(s, final_prompt, n_chunks))
        return videos

    def _render(self, s, final_prompt, n_chunks):
        cfg = self.cfg
        weights = {}
        for hint, spec in s.controls.items():
            weights[hint] = _scalar_weight(spec.get("control_weight", "0.5"))
        scalar = {h: (1.0 if w is None else max(0.0, w)) for h, w in weights.items()}
        total = sum(scalar.values())
        effective = {h: round(w / max(1.0, total), 4) for h, w in scalar.items()}
        token = f"{cfg.seed}|{json.dumps(effective, sort_keys=True)}"
        if self.knobs.variation:
            token += f"|{s.line_index}|{final_prompt}"
        digest = int(hashlib.sha256(token.encode("utf-8")).hexdigest()[:12], 16)
        eff_total = min(1.0, sum(effective.values()))
        look = {
            "hue": digest % 360,
            "saturation": round(0.55 + 0.9 * eff_total, 3),
            "contrast": round(1.0 + 0.35 * effective.get("edge", 0.0) + 0.2 * effective.get("seg", 0.0), 3),
            "brightness": round(((digest >> 10) % 17 - 8) / 100.0 - 0.08 * effective.get("depth", 0.0), 3),
        }
        filters = [
            f"hue=h={look['hue']}:s={look['saturation']}",
            f"eq=contrast={look['contrast']}:brightness={look['brightness']}",
        ]
        if effective.get("vis", 0.0) >= 0.5:
            filters.append("gblur=sigma=1.5")
        target = self.media.encode_cached(s.source, s.size[0], s.size[1], s.frames, _as_float(cfg.fps, 24), filters)
        return {
            "path": target,
            "sample": s,
            "look": look,
            "weights": {h: spec.get("control_weight") for h, spec in s.controls.items()},
            "effective_weights": effective,
            "chunks": n_chunks,
        }


def _as_float(value, default):
    try:
        return float(value)
    except (TypeError, ValueError):
        return float(default)


def _control_filters(hint, cfg, height):
    """(filters before scaling, filters after scaling) that make a control-like video from the input."""
    scale = max(1.0, height / 704.0)
    if hint in ("edge", "keypoint"):
        lo, hi = {0: (0.02, 0.06), 1: (0.05, 0.12), 2: (0.08, 0.2), 3: (0.12, 0.3), 4: (0.18, 0.45)}[
            _STRENGTH.get(str(cfg.canny_threshold), 2)
        ]
        mode = ":mode=colormix" if hint == "keypoint" else ""
        return [f"edgedetect=low={lo}:high={hi}{mode}"], []
    if hint == "depth":
        return [], ["format=gray", f"gblur=sigma={2 * scale:.3g}"]
    if hint == "seg":
        q = "trunc(val/86)*127"
        return [], [f"gblur=sigma={1.5 * scale:.3g}", f"lutrgb=r='{q}':g='{q}':b='{q}'"]
    if hint == "vis":
        sigma = (1.5, 3.0, 5.0, 8.0, 12.0)[_STRENGTH.get(str(cfg.blur_strength), 2)] * scale
        return [], [f"gblur=sigma={sigma:.3g}"]
    return [], []


class Preprocessors:
    """Creates {hint}_input_control_{rank}.mp4 for vis/edge/depth/seg/keypoint controls without input_control."""

    def __init__(self, cfg, media, n_ranks):
        self.cfg = cfg
        self.media = media
        self.n_ranks = n_ranks

    def __call__(self, sample, regional_prompts):
        media = self.media
        controls = sample.controls
        # measure what the model would read: input video and given control videos
        input_info = media.probe(sample.video_path) if sample.video_path else None
        frames = input_info["frames"] if input_info else NUM_MAX_FRAMES
        frames = min(frames, NUM_MAX_FRAMES)
        size = bucket_size(input_info["width"], input_info["height"]) if input_info else None
        for _hint, spec in controls.items():
            given = spec.get("input_control", None)
            if given is not None:
                info = media.probe(given)
                frames = min(frames, info["frames"])
                # the real code takes H, W from the last given control
                size = bucket_size(info["width"], info["height"])
        if size is None:
            size = VIDEO_RES_SIZE_INFO["16,9"]
        sample.frames = max(1, frames)
        bucket = size
        if "upscale" in controls:
            size = (bucket[0] * 3, bucket[1] * 3)
        sample.size = size

        for hint_key in list(controls):
            spec = controls[hint_key]
            if hint_key in GENERATED_HINTS and spec.get("input_control", None) is None:
                self._gen_input_control(sample, hint_key, spec, bucket)
            elif hint_key in ("hdmap", "lidar") and spec.get("input_control", None) is None:
                raise ValueError(
                    f"[cosmos-emulator] the {hint_key} control needs an 'input_control' video: "
                    f"hdmap and lidar are never generated from the input video (docs/models/transfer1.md)"
                )
            if spec.get("control_weight_prompt", None) is not None and hint_key == "seg":
                prompt = spec["control_weight_prompt"]
                log.info(f"{hint_key}: generating control weight tensor with SAM using {prompt=}", W_PRE_CALL)
                emu("WARNING: control_weight_prompt is not emulated (no seg_control_weight_<rank>.pt/.mp4 written); "
                    "the scalar control_weight is used")
        if regional_prompts:
            emu("WARNING: regional_prompts are ignored by the emulator (no regional_context files written)")
        if sample.video_path:
            sample.source = sample.video_path
            sample.source_fps = input_info["fps"]
        else:
            first = next((c.get("input_control") for c in controls.values() if c.get("input_control")), None)
            if first is None:
                raise ValueError("[cosmos-emulator] this line has no input video and no control video to read")
            sample.source = first
            sample.source_fps = media.probe(first)["fps"]

    def _gen_input_control(self, sample, hint_key, spec, bucket):
        media = self.media
        in_video = sample.video_path
        if hint_key == "seg":
            prompt = spec.get("input_control_prompt", sample.prompt)
            prompt = " ".join(prompt.split()[:128])
            log.info(
                f"no input_control provided for {hint_key}. generating input control video with SAM using {prompt=}",
                W_PRE,
            )
        elif hint_key == "depth":
            log.info(
                f"no input_control provided for {hint_key}. generating input control video with DepthAnythingModel",
                W_PRE,
            )
        elif hint_key == "keypoint":
            log.info(f"no input_control provided for {hint_key}. generating input control video with Openpose", W_PRE)
        if not in_video:
            raise ValueError(f"[cosmos-emulator] cannot generate the {hint_key} control: this line has no input video")
        info = media.probe(in_video)
        pre, post = _control_filters(hint_key, self.cfg, bucket[1])
        cached = media.encode_cached(in_video, bucket[0], bucket[1], sample.frames, info["fps"], post, pre=pre)
        paths = []
        for rank in range(self.n_ranks):
            out_video = os.path.join(sample.folder, f"{hint_key}_input_control_{rank}.mp4")
            shutil.copyfile(cached, out_video)
            paths.append(out_video)
        spec["input_control"] = paths[0]
        sample.generated.append(hint_key)
        emu(f"generated {hint_key} control: {paths[0]}"
            + (f" (+{len(paths) - 1} rank copies)" if len(paths) > 1 else ""))


def demo(cfg, control_inputs, ctx, knobs, media, script):
    t_start = time.time()
    control_inputs = validate_controlnet_specs(cfg, control_inputs)

    if cfg.num_gpus != ctx.nproc:
        how = "torchrun --nproc_per_node" if ctx.torchrun else "the number of launched processes (no torchrun)"
        raise RuntimeError(
            f"[cosmos-emulator] --num_gpus {cfg.num_gpus} must equal {how} = {ctx.nproc}: "
            f"context parallelism needs exactly one process per GPU (docs/models/transfer1.md)"
        )
    device_rank = 0
    if cfg.use_distilled:
        assert not cfg.is_av_sample
        assert not cfg.save_input_noise
    if cfg.save_input_noise:
        emu("WARNING: --save_input_noise is not emulated (no noise.pickle written)")
    for hint in ("hdmap", "lidar"):
        if hint in control_inputs and not cfg.is_av_sample:
            emu(f"WARNING: the {hint} control needs --is_av_sample in the real model")

    preprocessors = Preprocessors(cfg, media, cfg.num_gpus)
    pipeline = EmulatedPipeline(cfg, control_inputs, ctx, knobs, media)

    if cfg.batch_input_path:
        log.info(f"Reading batch inputs from path: {cfg.batch_input_path}", W_DEMO)
        prompts = read_prompts_from_file(cfg.batch_input_path)
    else:
        prompts = [{"prompt": cfg.prompt, "visual_input": cfg.input_video_path}]
    pipeline.total_lines = len(prompts)

    batch_size = cfg.batch_size if hasattr(cfg, "batch_size") else 1
    if any("upscale" in control_input for control_input in control_inputs) and batch_size > 1:
        batch_size = 1
        log.info("Setting batch_size=1 as upscale does not support batch generation", W_DEMO)
    os.makedirs(cfg.video_save_folder, exist_ok=True)
    regional = getattr(cfg, "regional_prompts", None)
    n_outputs = 0
    for batch_start in range(0, len(prompts), batch_size):
        batch_prompts = prompts[batch_start: batch_start + batch_size]
        actual_batch_size = len(batch_prompts)
        batch_prompt_texts = [p.get("prompt", None) for p in batch_prompts]
        batch_video_paths = [p.get("visual_input", None) for p in batch_prompts]

        batch_control_inputs = []
        samples = []
        video_save_subfolder = cfg.video_save_folder
        for i, input_dict in enumerate(batch_prompts):
            current_prompt = input_dict.get("prompt", None)
            current_video_path = input_dict.get("visual_input", None)
            if cfg.batch_input_path:
                video_save_subfolder = os.path.join(cfg.video_save_folder, f"video_{batch_start+i}")
                os.makedirs(video_save_subfolder, exist_ok=True)
            else:
                video_save_subfolder = cfg.video_save_folder
            current_control_inputs = copy.deepcopy(control_inputs)
            if "control_overrides" in input_dict:
                for hint_key, override in input_dict["control_overrides"].items():
                    if hint_key in current_control_inputs:
                        current_control_inputs[hint_key].update(override)
                    else:
                        log.warning(f"Ignoring unknown control key in override: {hint_key}", W_DEMO)
            log.info("running preprocessor", W_DEMO)
            sample = Sample(batch_start + i, current_prompt, current_video_path, current_control_inputs,
                            video_save_subfolder)
            preprocessors(sample, regional)
            batch_control_inputs.append(current_control_inputs)
            samples.append(sample)

        if regional:
            log.info(f"regional_prompts: {regional}", W_DEMO)
            pipeline.regional_prompts = [r.get("prompt") for r in regional if isinstance(r, dict)]
            pipeline.region_definitions = [r["region_definitions_path"] for r in regional
                                           if isinstance(r, dict) and "region_definitions_path" in r]

        batch_outputs = pipeline.generate(
            prompt=batch_prompt_texts,
            video_path=batch_video_paths,
            negative_prompt=cfg.negative_prompt,
            control_inputs=batch_control_inputs,
            save_folder=video_save_subfolder,
            batch_size=actual_batch_size,
            samples=samples,
        )
        if batch_outputs is None:
            log.critical("Guardrail blocked generation for entire batch.", W_DEMO)
        # HEAD (5005e82) has no `continue` here: a fully blocked batch crashes the run (docs/models/transfer1.md)
        videos, final_prompts = batch_outputs

        for i, (video, prompt) in enumerate(zip(videos, final_prompts)):
            if cfg.batch_input_path:
                video_save_subfolder = os.path.join(cfg.video_save_folder, f"video_{batch_start+i}")
                video_save_path = os.path.join(video_save_subfolder, "output.mp4")
                prompt_save_path = os.path.join(video_save_subfolder, "prompt.txt")
            else:
                video_save_path = os.path.join(cfg.video_save_folder, f"{cfg.video_save_name}.mp4")
                prompt_save_path = os.path.join(cfg.video_save_folder, f"{cfg.video_save_name}.txt")
            if device_rank == 0:
                os.makedirs(os.path.dirname(video_save_path), exist_ok=True)
                shutil.copyfile(video["path"], video_save_path)
                with open(prompt_save_path, "wb") as f:
                    f.write(prompt.encode("utf-8"))
                s = video["sample"]
                _write_sidecar(os.path.join(os.path.dirname(video_save_path), SIDECAR_NAME), {
                    "emulator": "cosmos-emulator",
                    "is_model_output": False,
                    "note": "CPU stand-in for Cosmos Transfer 1: this video is the input video re-encoded with a "
                            "visible 'COSMOS EMULATOR' label and a colour look; it is NOT a model output.",
                    "script": script,
                    "output": os.path.basename(video_save_path),
                    "prompt_file": os.path.basename(prompt_save_path),
                    "line_index": s.line_index,
                    "prompt": prompt,
                    "prompt_upsampled": s.upsampled,
                    "input_video": s.video_path,
                    "controls": {
                        h: {
                            "control_weight": spec.get("control_weight"),
                            "effective_weight": video["effective_weights"].get(h),
                            "input_control": spec.get("input_control"),
                            "generated": h in s.generated,
                        }
                        for h, spec in s.controls.items()
                    },
                    "width": s.size[0],
                    "height": s.size[1],
                    "frames": s.frames,
                    "fps": cfg.fps,
                    "chunks": video["chunks"],
                    "num_steps": cfg.num_steps,
                    "guidance": cfg.guidance,
                    "seed": cfg.seed,
                    "sigma_max": cfg.sigma_max,
                    "num_gpus": cfg.num_gpus,
                    "variation": knobs.variation,
                    "look": video["look"],
                })
                log.info(f"Saved video to {video_save_path}", W_DEMO)
                log.info(f"Saved prompt to {prompt_save_path}", W_DEMO)
                emu(f"line {s.line_index}/{len(prompts)} done: {video_save_path}")
                n_outputs += 1
    emu(f"finished: lines={len(prompts)} outputs={n_outputs} elapsed={time.time() - t_start:.2f}s")


def run_transfer(script, script_args, ctx):
    _out(BANNER)
    knobs = Knobs()
    script_argv = [script, *script_args]
    cfg, control_inputs = parse_arguments(os.path.basename(script), script_argv)
    media = Media(find_ffmpeg(), knobs)
    demo(cfg, control_inputs, ctx, knobs, media, script)


# --------------------------------------------------------------------------- upsampler_pipeline.py


def run_upsampler(script, script_args, ctx):
    emu(BANNER[len(TAG) + 1:], err=True)
    parser = argparse.ArgumentParser(prog=os.path.basename(script), description="Prompt upsampler pipeline")
    parser.add_argument("--prompt", type=str, default=None, help="Prompt to upsample")
    parser.add_argument("--input_video", type=str, required=True, help="Path to input video")
    parser.add_argument("--checkpoint_dir", type=str, default="checkpoints",
                        help="Base directory containing model checkpoints")
    parser.add_argument("--offload_prompt_upsampler", action="store_true",
                        help="Offload prompt upsampler model after inference")
    args = parser.parse_args(script_args)
    rank = int(os.environ["RANK"])  # the real __main__ does this: plain `python` without RANK raises KeyError
    knobs = Knobs()
    media = Media(find_ffmpeg(), knobs)
    stats = media.frame_stats(args.input_video, 2)
    text = upsample_text(args.prompt if args.prompt is not None else DEFAULT_UPSAMPLER_PROMPT, stats)
    if rank == 0:
        _out(f"Upsampled prompt: {text}")

