"""The ledger's records, typed: prompts, runs, batches, and the words their states are written in.

They are stored as JSON objects (TinyDB documents), so they are ``TypedDict``s: a
record read from the ledger is a plain dict with these keys.  Keys that every
record of a kind carries are ``Required``; the rest appear as a record's life
goes on (``started`` once it runs, ``outputs`` once it completes …).
"""

from __future__ import annotations

from typing import Any, Literal, Required, TypedDict

RunStatus = Literal["queued", "staging", "running", "fetching", "completed", "failed", "cancelled"]
BatchState = Literal["staging", "staged", "running", "fetching", "done", "failed", "cancelled", "lost"]
# Why a run did not complete (or went back to the queue), as stored in ``run["reason"]``.
Reason = Literal[
    "guardrail",
    "oom",
    "validation",
    "timeout",
    "crash",
    "not_reached",
    "vanished",
    "cancelled",
    "input",
    "launch",
    "shifted",
]


class Owner(TypedDict):
    """A process that claims something (a batch it follows, a folder it ingests)."""

    pid: int
    host: str
    start: str | None  # kernel start time: a reused pid does not look like the owner


class VideoRecord(TypedDict, total=False):
    """One input video of a prompt (or the video of an upscale): where it is and what it is."""

    path: Required[str]
    sha256: Required[str]
    bytes: int
    frames: int
    fps: float
    width: int
    height: int
    codec: str


class PromptRecord(TypedDict, total=False):
    id: Required[str]
    name: Required[str]
    text: Required[str]
    negative_prompt: str | None
    inputs: Required[dict[str, VideoRecord]]  # "rgb" and any controls ("depth", "seg" …)
    fps: float
    frames: int
    width: int
    height: int
    parent_prompt: str | None  # the prompt an enhance made this one from
    enhanced_by: str  # the enhance run that made it
    history: list[dict[str, Any]]  # earlier texts an `enhance --overwrite` replaced
    created: Required[str]
    source: str  # "watch" for prompts from the drop folder
    drop_folder: str


class RunRecord(TypedDict, total=False):
    id: Required[str]
    prompt_id: Required[str | None]
    operation: Required[str]
    params: Required[dict[str, Any]]  # as the operation's validate() normalised them
    status: Required[RunStatus]
    priority: int
    attempts: int
    batch_id: str | None
    executor: str
    outputs: dict[str, str]  # name -> path relative to the project home
    error: str | None
    reason: Reason | None
    retry: bool  # queued again after its batch: the next launch is a relaunch
    max_controls: int  # after an out-of-memory: only loads with at most this many control networks
    held_by: Owner | None  # a foreground command running it itself: workers leave it alone while it lives
    sweep: str  # the command that made it with its variations (``sw_…``): they sit side by side
    parent_run: str | None  # an upscale's source run
    result_prompt: str  # the prompt an enhance made or changed
    rating: int | None
    note: str
    created: Required[str]
    updated: str
    started: str | None
    finished: str | None


class BatchRecord(TypedDict, total=False):
    id: Required[str]
    operation: Required[str]
    executor: Required[str]
    executor_type: str
    runs: Required[list[str]]  # in line order
    strategy: str | None
    state: Required[BatchState]
    owner: Owner | None  # the process following it
    finisher: Owner | None  # the process fetching and settling it
    handle: dict[str, Any]  # see executor.BatchHandle
    devices: list[str]  # the GPUs (or anonymous slot) it holds at its place: its lease (slots.py)
    pinned: bool  # True when ``devices`` are GPU indices the model was pinned to
    after: str | None  # staged: the batch on those GPUs it starts after
    log_path: str | None
    staging: dict[str, Any]  # figures the executor's stage() returned
    stop_requested: str | None
    cancel_runs: list[str]
    stop_reason: str | None
    exit_code: int | None
    completed_runs: int
    error: str | None
    created: Required[str]
    updated: str
    started: str | None
    finished: str | None
    model_started: str | None  # the launcher's stamps (UTC, ms) of the model process, from the batch folder
    model_exited: str | None
