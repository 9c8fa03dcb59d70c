"""What every emulated model shares: the label, the knobs, ffmpeg and the media it makes.

Every video the emulator writes carries the visible label "COSMOS EMULATOR" and the mp4
comment below; every output folder gets a sidecar saying the files are not model outputs.
Standard library only: this package runs on GPU hosts with whatever python3 they have.
"""

from __future__ import annotations

import atexit
import colorsys
import errno
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile

TAG = "[cosmos-emulator]"
MP4_COMMENT = "cosmos-emulator: CPU stand-in, not a model output"
LABEL_TEXT = "COSMOS EMULATOR"
SIDECAR_NAME = "emulator.json"


def banner(model):
    """The first line of every run: what is emulated, and that nothing is a model output."""
    return f"{TAG} CPU emulator of {model} \u2014 outputs are NOT model outputs"


class EmulatorConfigError(Exception):
    """A problem with the emulator's own environment (knobs, ffmpeg)."""


class OutOfMemoryError(RuntimeError):
    pass


OutOfMemoryError.__module__ = "torch"  # traceback prints "torch.OutOfMemoryError: ..."


# --------------------------------------------------------------------------- output


def _setup_streams():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(encoding="utf-8", errors="replace", line_buffering=True)
        except Exception:
            pass


def _out(line, err=False):
    stream = sys.stderr if err else sys.stdout
    stream.write(line + "\n")
    stream.flush()


def emu(msg, err=False):
    _out(f"{TAG} {msg}", err=err)



# --------------------------------------------------------------------------- knobs


def _knob_float(name, default):
    raw = os.environ.get(name, "")
    if raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise EmulatorConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < 0 or math.isnan(value):
        raise EmulatorConfigError(f"{name} must be >= 0, got {raw!r}")
    return value


class Knobs:
    def __init__(self):
        self.load_seconds = _knob_float("COSMOS_EMULATOR_LOAD_SECONDS", 0.0)
        self.load_per_control = _knob_float("COSMOS_EMULATOR_LOAD_SECONDS_PER_CONTROL", 0.0)
        self.seconds_per_chunk = _knob_float("COSMOS_EMULATOR_SECONDS_PER_CHUNK", 0.0)
        # the cost model's shape for extra control networks (cosmoskit's batching.cost.chunk_control_factor)
        raw_factor = os.environ.get("COSMOS_EMULATOR_CONTROL_FACTOR", "").strip()
        self.control_factor = _knob_float("COSMOS_EMULATOR_CONTROL_FACTOR", 0.0) if raw_factor else None
        raw = os.environ.get("COSMOS_EMULATOR_OOM_ABOVE_CONTROLS", "").strip()
        self.oom_above = None
        if raw:
            try:
                self.oom_above = int(raw)
            except ValueError:
                raise EmulatorConfigError(
                    f"COSMOS_EMULATOR_OOM_ABOVE_CONTROLS must be an integer, got {raw!r}"
                ) from None
        self.block_word = os.environ.get("COSMOS_EMULATOR_BLOCK_WORD", "EMULATOR_GUARDRAIL_BLOCK")
        self.guardrail_lines = set()
        for part in os.environ.get("COSMOS_EMULATOR_GUARDRAIL_LINES", "").split(","):
            part = part.strip()
            if not part:
                continue
            try:
                self.guardrail_lines.add(int(part))
            except ValueError:
                raise EmulatorConfigError(
                    f"COSMOS_EMULATOR_GUARDRAIL_LINES must be a comma list of integers, got {part!r}"
                ) from None
        raw = os.environ.get("COSMOS_EMULATOR_VARIATION", "1").strip()
        if raw not in ("0", "1", ""):
            raise EmulatorConfigError(f"COSMOS_EMULATOR_VARIATION must be 0 or 1, got {raw!r}")
        self.variation = raw != "0"
        self.label = os.environ.get("COSMOS_EMULATOR_LABEL", "auto").strip() or "auto"
        if self.label not in ("auto", "drawtext", "drawbox"):
            raise EmulatorConfigError(f"COSMOS_EMULATOR_LABEL must be auto, drawtext or drawbox, got {self.label!r}")


# --------------------------------------------------------------------------- ffmpeg


def find_ffmpeg():
    for env in ("COSMOS_EMULATOR_FFMPEG", "IMAGEIO_FFMPEG_EXE"):
        value = os.environ.get(env, "").strip()
        if value:
            path = value if os.path.sep in value else (shutil.which(value) or value)
            if os.path.isfile(path) and os.access(path, os.X_OK):
                return path
            raise EmulatorConfigError(f"{env}={value!r} is not an executable ffmpeg")
    try:
        import imageio_ffmpeg  # type: ignore

        path = imageio_ffmpeg.get_ffmpeg_exe()
        if path and os.path.isfile(path):
            return path
    except Exception:
        pass
    path = shutil.which("ffmpeg")
    if path:
        return path
    raise EmulatorConfigError(
        "no ffmpeg found: set COSMOS_EMULATOR_FFMPEG or IMAGEIO_FFMPEG_EXE, "
        "pip install imageio-ffmpeg, or put ffmpeg on PATH"
    )


class Media:
    """ffmpeg helpers with in-process caches (probe, stats, encodes)."""

    def __init__(self, ffmpeg, knobs):
        self.ffmpeg = ffmpeg
        self.knobs = knobs
        self._probe_cache = {}
        self._stats_cache = {}
        self._encode_cache = {}
        self._label_mode = None
        self._fontfile = None
        self._tmp = None
        self.encodes = 0

    # -- infrastructure
    def tmpdir(self):
        if self._tmp is None:
            self._tmp = tempfile.mkdtemp(prefix="cosmos-emulator-")
            atexit.register(shutil.rmtree, self._tmp, True)
        return self._tmp

    def _run(self, args, what, capture_stdout=False):
        cmd = [self.ffmpeg, "-hide_banner", "-nostdin", *args]
        proc = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture_stdout else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        return proc

    @staticmethod
    def _tail(stderr, n=3):
        lines = [ln for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
        return " | ".join(lines[-n:])

    # -- reading
    def probe(self, path):
        """Return dict(width, height, fps, frames) of a video or image, like the real reader would see it."""
        if not isinstance(path, str):
            raise TypeError(f"expected str, bytes or os.PathLike object, not {type(path).__name__}")
        if not os.path.exists(path):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        st = os.stat(path)
        key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
        if key in self._probe_cache:
            return self._probe_cache[key]
        proc = self._run(["-v", "info", "-i", path, "-map", "0:v:0", "-c", "copy", "-f", "null", os.devnull], "probing")
        text = proc.stderr.decode("utf-8", "replace")
        width = height = None
        fps = None
        rotation = 0.0
        in_input = False
        for line in text.splitlines():
            if line.startswith("Input #0"):
                in_input = True
            elif line.startswith(("Output #", "Stream mapping")):
                in_input = False
            if not in_input:
                continue
            if width is None and "Video:" in line and "Stream #" in line:
                m = re.search(r"Video: .*?, (\d+)x(\d+)", line)
                if m:
                    width, height = int(m.group(1)), int(m.group(2))
                m = re.search(r"(\d+(?:\.\d+)?)(k?) fps", line)
                if m:
                    fps = float(m.group(1)) * (1000 if m.group(2) else 1)
                else:
                    m = re.search(r"(\d+(?:\.\d+)?)(k?) tbr", line)
                    if m:
                        fps = float(m.group(1)) * (1000 if m.group(2) else 1)
            m = re.search(r"rotation of (-?\d+(?:\.\d+)?) degrees", line)
            if m:
                rotation = float(m.group(1))
        frames = None
        for m in re.finditer(r"frame=\s*(\d+)", text):
            frames = int(m.group(1))
        if proc.returncode != 0 or not width or not height or not frames:
            raise OSError(f"[cosmos-emulator] ffmpeg could not read a video from {path!r}: {self._tail(proc.stderr)}")
        if abs(abs(rotation) % 180 - 90) < 1:
            width, height = height, width
        info = {"width": width, "height": height, "fps": fps or 24.0, "frames": frames}
        self._probe_cache[key] = info
        return info

    def frame_stats(self, path, n_frames=2):
        """Mean colour / brightness / dominant colour name of the first frames (stdlib only)."""
        info = self.probe(path)
        key = (os.path.abspath(path), n_frames)
        if key in self._stats_cache:
            return self._stats_cache[key]
        w, h = (32, 18) if info["width"] >= info["height"] else (18, 32)
        proc = self._run(
            ["-v", "error", "-i", path, "-frames:v", str(n_frames), "-vf", f"scale={w}:{h}",
             "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"],
            "reading frames",
            capture_stdout=True,
        )
        data = proc.stdout
        if proc.returncode != 0 or len(data) < w * h * 3:
            raise OSError(f"[cosmos-emulator] ffmpeg could not decode frames of {path!r}: {self._tail(proc.stderr)}")
        npx = len(data) // 3
        rs = gs = bs = 0
        buckets = {}
        for i in range(npx):
            r, g, b = data[3 * i], data[3 * i + 1], data[3 * i + 2]
            rs += r
            gs += g
            bs += b
            name = _colour_name(r, g, b)
            buckets[name] = buckets.get(name, 0) + 1
        mean = (rs / npx, gs / npx, bs / npx)
        luma = 0.299 * mean[0] + 0.587 * mean[1] + 0.114 * mean[2]
        dominant = max(sorted(buckets), key=lambda k: buckets[k])
        stats = {
            "mean_rgb": [round(c) for c in mean],
            "luma": round(luma),
            "dominant": dominant,
            "dominant_share": round(100.0 * buckets[dominant] / npx),
            "width": info["width"],
            "height": info["height"],
            "frames_read": min(n_frames, info["frames"]),
        }
        self._stats_cache[key] = stats
        return stats

    # -- labels
    def label_filter(self, height):
        mode = self._label_mode_resolved()
        if mode == "drawtext":
            size = max(10, height // 14)
            font = f"fontfile='{self._fontfile}':" if self._fontfile else ""
            return (
                f"drawtext={font}text='{LABEL_TEXT}':fontcolor=white:fontsize={size}:"
                f"box=1:boxcolor=black@0.6:boxborderw={max(2, size // 4)}:x={max(2, size // 2)}:y={max(2, size // 2)}"
            )
        band = max(4, height // 10)
        return (
            f"drawbox=x=0:y=0:w=iw:h={band}:color=magenta@0.85:t=fill,"
            f"drawbox=x=0:y={band}:w=iw:h={max(1, band // 6)}:color=yellow@0.9:t=fill"
        )

    def _label_mode_resolved(self):
        if self._label_mode is not None:
            return self._label_mode
        mode = self.knobs.label
        if mode == "auto":
            mode = "drawbox"
            candidates = [None] + [
                f for f in (
                    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
                    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
                    "/Library/Fonts/Arial.ttf",
                ) if os.path.isfile(f)
            ]
            for font in candidates:
                fpart = f"fontfile='{font}':" if font else ""
                proc = self._run(
                    ["-v", "error", "-f", "lavfi", "-i", "color=c=black:s=64x32:d=0.04",
                     "-vf", f"drawtext={fpart}text='{LABEL_TEXT}':fontsize=10:fontcolor=white",
                     "-f", "null", os.devnull],
                    "testing drawtext",
                )
                if proc.returncode == 0 and not proc.stderr.strip():
                    mode, self._fontfile = "drawtext", font
                    break
        self._label_mode = mode
        return mode

    # -- writing
    def encode(self, src, out_path, width, height, frames, fps, filters, label=True, pre=()):
        """Write an H.264 mp4 to out_path (a copy of the cached encode when one exists)."""
        shutil.copyfile(self.encode_cached(src, width, height, frames, fps, filters, label, pre), out_path)

    def encode_cached(self, src, width, height, frames, fps, filters, label=True, pre=()):
        """One ffmpeg call: src -> H.264 mp4 (width x height, `frames` frames at `fps`) in the
        process cache; identical requests (same source file and filter chain) reuse the file."""
        chain = [*pre, f"scale={width}:{height}:flags=bicubic", "setsar=1"]
        chain += [f for f in filters if f]
        if label:
            chain.append(self.label_filter(height))
        fps_s = _num(fps)
        chain += [f"setpts=N/({fps_s}*TB)", "format=yuv420p"]
        vf = ",".join(chain)
        st = os.stat(src)
        key = (os.path.abspath(src), st.st_size, st.st_mtime_ns, vf, frames, fps_s)
        cached = self._encode_cache.get(key)
        if cached and os.path.exists(cached):
            return cached
        target = os.path.join(self.tmpdir(), f"enc_{len(self._encode_cache)}.mp4")
        args = [
            "-v", "error", "-y", "-i", src, "-map", "0:v:0", "-an", "-sn", "-dn",
            "-vf", vf, "-frames:v", str(frames), "-r", fps_s,
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
            "-movflags", "+faststart", "-metadata", f"comment={MP4_COMMENT}",
            target,
        ]
        proc = self._run(args, "encoding")
        self.encodes += 1
        if proc.returncode != 0:
            raise RuntimeError(f"[cosmos-emulator] ffmpeg failed to encode {src!r}: {self._tail(proc.stderr)}")
        self._encode_cache[key] = target
        return target


    def still(self, src, out_path, width, height, filters, label=True, pre=()):
        """Write one labelled JPEG frame (the newer models save a one-frame output as .jpg)."""
        chain = list(pre) + [f"scale={width}:{height}:flags=bicubic", "setsar=1"] + [f for f in filters if f]
        if label:
            chain.append(self.label_filter(height))
        proc = self._run(["-v", "error", "-y", "-i", src, "-map", "0:v:0", "-an", "-vf", ",".join(chain),
                          "-frames:v", "1", "-q:v", "3", out_path], "encoding a frame")
        self.encodes += 1
        if proc.returncode != 0:
            raise RuntimeError(f"[cosmos-emulator] ffmpeg failed to write {out_path!r}: {self._tail(proc.stderr)}")

def _num(x):
    x = float(x)
    return str(int(x)) if x.is_integer() else f"{x:.6g}"


def _colour_name(r, g, b):
    h, s, v = colorsys.rgb_to_hsv(r / 255.0, g / 255.0, b / 255.0)
    if v < 0.18:
        return "black"
    if s < 0.18:
        return "white" if v > 0.85 else "grey"
    deg = h * 360
    for limit, name in ((15, "red"), (45, "orange"), (70, "yellow"), (160, "green"), (200, "cyan"),
                        (255, "blue"), (290, "purple"), (335, "magenta"), (361, "red")):
        if deg < limit:
            return name
    return "red"




def write_sidecar(path, data):
    """Write a JSON file atomically (a reader never sees half of it)."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, path)


OOM_MESSAGE = (
    "CUDA out of memory. Tried to allocate 1.27 GiB. GPU 0 has a total capacity of 79.19 GiB of which "
    "402.56 MiB is free. Including non-PyTorch memory, this process has 78.78 GiB memory in use. "
    "Of the allocated memory 76.91 GiB is allocated by PyTorch, and 1.21 GiB is reserved by PyTorch "
    "but unallocated. If reserved but unallocated memory is large try setting "
    "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.  See documentation for "
    "Memory Management  (https://pytorch.org/docs/stable/notes/cuda.html#environment-variables)"
)
