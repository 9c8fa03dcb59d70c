"""Judging each sample of a Transfer 2.5 process (docs/models/transfer2.5.md §7-8).

Exit 0 does not mean every sample succeeded (a guardrail block skips a sample), and a non-zero exit
means the samples after the failing one never ran.  So each run is judged on its own files and on
its own part of the logs; :func:`judge` is the decision, a pure function tested as a table.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from cosmoskit_transfer25 import contract


@dataclass(frozen=True)
class Sample:
    """What one sample left behind."""

    video_problem: str | None  # why <name>.mp4 is not a result (None: it is one)
    video_exists: bool  # <name>.mp4 is there, good or not
    started: bool  # <name>.json: the sample was reached (it is written first, before the guardrail)
    guardrail: str | None  # its "GUARDRAIL BLOCKED: …" line (debug.log), or the console's CRITICAL line


@dataclass(frozen=True)
class Process:
    """How the whole process ended."""

    exit_code: int | None
    refused: str | None  # it refused its input before running anything (validation), with the line
    oom: str | None  # it ran out of GPU memory, with the line
    error: str  # the last error line of its log


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str | None = None
    message: str | None = None
    retry: bool = False


def judge(sample: Sample, process: Process) -> Verdict:
    """One run's verdict.

    completed   its video decodes at the predicted size, length and rate and the log says it was saved;
    guardrail   blocked (it has only <name>.json): final, never relaunched;
    validation  the process refused the batch's input before running anything: final;
    oom         out of GPU memory: relaunched (smaller) once;
    crash       the process failed on this very sample (exit != 0): relaunched once;
    not_reached the process ended before this sample: relaunched once."""
    if sample.video_problem is None:
        return Verdict(True)
    if sample.guardrail:
        return Verdict(False, "guardrail", f"blocked by the safety guardrail: {sample.guardrail}")
    broken = f"; its video is not a result: {sample.video_problem}" if sample.video_exists else ""
    if process.refused and not sample.started:
        return Verdict(False, "validation", f"the model refused its input: {process.refused}")
    if process.oom:
        return Verdict(False, "oom", f"CUDA out of memory: {process.oom}{broken}", retry=True)
    if sample.started:
        if process.exit_code == 0:
            return Verdict(False, "crash", "the model wrote its arguments but no video, and exited 0 (a blocked "
                                           f"video leaves no other trace){broken}")
        return Verdict(False, "crash", f"the model process failed on this sample: {process.error}{broken}",
                       retry=True)
    return Verdict(False, "not_reached", f"the model process ended before this sample: {process.error}", retry=True)


def segments(log: str) -> tuple[str, dict[str, str]]:
    """A log split at each ``[i/N] Processing sample <name>``: (the part before any sample, name -> its part)."""
    header, parts = log, {}
    matches = list(re.finditer(rf"(?m)^.*{contract.PROCESSING.pattern}.*$", log))
    if matches:
        header = log[: matches[0].start()]
        for k, m in enumerate(matches):
            end = matches[k + 1].start() if k + 1 < len(matches) else len(log)
            parts[m.group(3)] = log[m.start():end]
    return header, parts


def guardrail_line(debug_part: str, console_part: str) -> str | None:
    """The block of one sample: upstream's own ``GUARDRAIL BLOCKED: …`` line, which it writes to debug.log
    only (§7); the caller's ``Guardrail blocked generation`` (stdout, console.log) when debug.log is missing."""
    for text, marker in ((debug_part, contract.GUARDRAIL_DEBUG), (console_part, contract.GUARDRAIL_CONSOLE)):
        for line in text.splitlines():
            if marker in line:
                return line.split("] ", 1)[-1].strip()[:300]
    return None


def last_error(text: str) -> str:
    """The last line that looks like an exception or an error message (else the last line)."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    for line in reversed(lines):
        if re.match(r"^[\w.]*(Error|Exception)\b", line) or "Error:" in line:
            return line[:300]
    return lines[-1][:300] if lines else "no output and nothing in the log"


def process(log: str, exit_code: int | None) -> Process:
    """How the process ended, from its whole log (stdout and stderr)."""
    refused = None
    if exit_code not in (0, None) and not contract.PROCESSING.search(log):
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
        elif exit_code == 2:  # a flag tyro refused
            refused = last_error(log)
    oom = next((last_error(log) for m in contract.OOM_MARKERS if m in log), None)
    return Process(exit_code, refused, oom, last_error(log))
