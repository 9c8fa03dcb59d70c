"""A batch being prepared or run: its folder here, its folder where the model runs, its inputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from cosmoskit._core.records import PromptRecord, RunRecord, VideoRecord

if TYPE_CHECKING:
    from cosmoskit._core.executor import Executor
    from cosmoskit._core.operation import Operation

# Written into every batch folder; the executor ships all of them.
COMMAND_JSON = "command.json"
COMMAND_ARGS = "command.args"  # NUL-separated argv, read by launch.sh with `mapfile -d ''`
LAUNCH_ENV = "launch.env"
MANIFEST = "manifest.json"
LOG = "batch.log"
EXIT_CODE = "exit_code"
STOP_REASON = "stop_reason"
PID_FILE = "launcher.pid"
STOP_ARGS = "stop.args"  # NUL-separated argv the launcher runs when the batch is stopped


@dataclass
class BatchJob:
    """Everything an operation and an executor need to prepare, stage and collect one batch.

    ``dir`` is the batch folder on this machine; ``remote_root`` is the same
    folder as the model process sees it (identical for the local executor).
    ``model`` holds the executor's model settings (checkpoint_dir, num_gpus …); ``gpus`` the GPUs of
    the place the batch is pinned to (the runtime's ``place["gpus"]`` and ``CUDA_VISIBLE_DEVICES`` say
    so to the model).
    """

    id: str
    operation: Operation
    runs: list[RunRecord]
    prompts: dict[str, PromptRecord]
    dir: Path
    remote_root: str
    model: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    container: str = ""  # the name a containerised model process gets (unique per batch)
    tools: dict[str, str] = field(default_factory=dict)  # files cosmoskit ships (local path -> path at the place)
    place: Executor | None = None
    gpus: list[str] = field(default_factory=list)  # GPU indices at the place it is pinned to (empty: not pinned)

    def ship_tool(self, local: Path) -> str:
        """Ship one of cosmoskit's own files (the emulator …) to the place; return its path there."""
        if self.place is None:
            return str(local)
        path = self.tools.get(str(local))
        if path is None:
            path = self.tools[str(local)] = self.place.tool_path(local)
        return path

    def remote(self, rel: str) -> str:
        return f"{self.remote_root.rstrip('/')}/{rel}"

    def local(self, rel: str) -> Path:
        return self.dir / rel

    def stage_input(self, item: VideoRecord) -> str:
        """Ship a video (a prompt input record: path, sha256, bytes) with the batch; return its path for the model."""
        sha = item["sha256"]
        suffix = Path(item["path"]).suffix.lower() or ".mp4"
        name = f"inputs/{sha[:20]}{suffix}"
        self.inputs.setdefault(sha, {"sha256": sha, "name": name, "path": item["path"], "bytes": item.get("bytes")})
        return self.remote(name)

    def write_json(self, rel: str, data: Any) -> Path:
        path = self.local(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
        return path

    def write_text(self, rel: str, text: str) -> Path:
        path = self.local(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def read_text(self, rel: str) -> str:
        path = self.local(rel)
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
