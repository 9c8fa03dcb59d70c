"""Judging each sample of a Cosmos 3 process (docs/models/cosmos3.md §7-8).

Success is ``<out>/<name>/sample_outputs.json`` with ``status: success`` and a ``vision.mp4`` that
decodes at the predicted size, length and rate.  Any failure aborts the rest of the process (even
with ``--keep-going``), so a sample with ``sample_args.json`` only is the one it died on and a
sample without a folder never ran.  No guardrail runs on the transfer path.  :func:`judge` is the
decision, a pure function tested as a table.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from cosmoskit_cosmos3 import contract


@dataclass(frozen=True)
class Sample:
    status: str | None  # sample_outputs.json's status ("success", "skip"), None if absent or unreadable
    message: str | None  # its message (why a sample was skipped)
    video_problem: str | None  # why vision.mp4 is not a result (None: it is one)
    video_exists: bool
    started: bool  # sample_args.json: the sample was reached


@dataclass(frozen=True)
class Process:
    exit_code: int | None
    refused: str | None  # it refused its input before any sample ran, with the line
    oom: str | None
    error: str
    reached: bool = False  # some sample began (an out-of-memory there is that sample's, not the load's)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str | None = None
    message: str | None = None
    retry: bool = False


def judge(sample: Sample, process: Process) -> Verdict:
    """completed when status is success and the video is a result; ``skip`` and a refused input are final
    (validation); out of memory (the sample it struck, or every sample when it struck the load), the
    sample the process died on and those it never reached are relaunched once."""
    if sample.status == "success" and sample.video_problem is None:
        return Verdict(True)
    if sample.status == "skip":
        return Verdict(False, "validation", f"the model skipped it: {sample.message or 'invalid sample'}")
    broken = f"; its video is not a result: {sample.video_problem}" if sample.video_exists else ""
    if sample.status == "success":
        return Verdict(False, "crash", f"the model says it succeeded, but{broken[1:] or ' there is no video'}",
                       retry=True)
    if process.refused and not sample.started:
        return Verdict(False, "validation", f"the model refused its input: {process.refused}")
    if process.oom and (sample.started or not process.reached):
        return Verdict(False, "oom", f"CUDA out of memory: {process.oom}", retry=True)
    if sample.started:
        if process.exit_code == 0:
            return Verdict(False, "crash", f"the model began this sample but wrote no result, and exited 0{broken}")
        return Verdict(False, "crash", f"the model process failed on this sample: {process.error}{broken}",
                       retry=True)
    return Verdict(False, "not_reached", f"the model process ended before this sample: {process.error}", retry=True)


def read_status(path: Path) -> tuple[str | None, str | None]:
    """(status, message) of a sample_outputs.json; (None, None) when it is missing or cut short."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, None
    if not isinstance(data, dict):
        return None, None
    return (str(data["status"]) if data.get("status") is not None else None,
            str(data["message"]) if data.get("message") else None)


def segments(log: str) -> tuple[str, dict[str, str]]:
    """A log split where each sample starts (``Saved sample args to '<out>/<name>/sample_args.json'``)."""
    header, parts = log, {}
    matches = list(re.finditer(rf"(?m)^.*{contract.ARGS_SAVED.pattern}.*$", log))
    if matches:
        header = log[: matches[0].start()]
        for k, m in enumerate(matches):
            end = matches[k + 1].start() if k + 1 < len(matches) else len(log)
            parts[m.group(2)] = log[m.start():end]
    return header, parts


def last_error(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    for line in reversed(lines):
        if re.match(r"^[\w.]*(Error|Exception)\b", line) or "Error:" in line:
            return line[:300]
    return lines[-1][:300] if lines else "no output and nothing in the log"


def process(log: str, exit_code: int | None) -> Process:
    refused = None
    if exit_code not in (0, None) and not contract.ARGS_SAVED.search(log):
        marked = [ln.strip(" │|\t") for ln in log.splitlines() if any(m in ln for m in contract.VALIDATION_MARKERS)]
        if marked:
            raised = [ln for ln in marked if re.match(r"^[\w.]*(Error|Exception): ", ln)]
            refused = (raised or marked)[-1]
            lines = log.splitlines()
            for k, line in enumerate(lines[1:], 1):  # pydantic's report: the field, then what is wrong with it
                if re.match(r"^\s+(Input should|Value error|Field required|Extra inputs)", line):
                    refused += f": {lines[k - 1].strip()}: {line.strip().split(' [type=')[0]}"
                    break
            refused = refused[:300]
        elif exit_code == 2:
            refused = last_error(log)
    oom = next((last_error(log) for m in contract.OOM_MARKERS if m in log), None)
    return Process(exit_code, refused, oom, last_error(log), bool(contract.ARGS_SAVED.search(log)))
