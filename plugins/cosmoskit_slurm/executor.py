"""The Slurm executor: each batch is one ``sbatch`` job running ``launch.sh`` in its batch folder.

It reaches the cluster from a login node over SSH (reusing the SSH executor's connection,
staging and host-key handling) or, with no ``host``, runs the Slurm commands on this machine.
The batch folder and the content-addressed store live on the cluster's shared filesystem.
"""
from __future__ import annotations

import shlex
from typing import Any, ClassVar

from cosmoskit.api import (
    BatchJob,
    CosmoskitError,
    ExecutorStatus,
    Field,
    HostJob,
    PollResult,
    env_names,
    non_negative,
    positive,
)
from cosmoskit_ssh import remote
from cosmoskit_ssh.executor import SSHExecutor

q = shlex.quote

# Slurm job states (squeue/scontrol/sacct) and what they mean for a batch.
ALIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING", "SIGNALING",
         "STAGE_OUT", "RESV_DEL_HOLD", "REQUEUE_FED", "REQUEUE_HOLD"}
LOST = {"NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "DEADLINE", "OUT_OF_MEMORY"}  # unfinished runs are requeued


class SlurmExecutor(SSHExecutor):
    name = "slurm"
    description = "a Slurm cluster: one sbatch job per batch, shared-filesystem staging, squeue/scancel"
    options: ClassVar[dict[str, Any]] = {
        **SSHExecutor.options,
        "host": Field(str, None, "login node to reach over SSH; null = run the Slurm commands on this machine",
                      nullable=True),
        "remote_dir": Field(str, "~/cosmoskit", "cosmoskit's folder on the cluster's shared filesystem"),
        "partition": Field(str, None, "sbatch --partition", nullable=True),
        "account": Field(str, None, "sbatch --account", nullable=True),
        "time_limit": Field(str, None, "sbatch --time (e.g. 04:00:00)", nullable=True),
        "gpus_per_job": Field(int, 1, "sbatch --gres=gpu:N (0 leaves the line out)", check=non_negative),
        "extra_directives": Field(list, [], "more #SBATCH lines, e.g. [\"--qos=high\", \"--constraint=h100\"]"),
        "concurrency": Field(int, 4, "batches submitted at once; Slurm schedules them", check=positive),
        "slurm_env": Field(dict, {}, "environment for the Slurm commands (e.g. SLURM_CONF)", check=env_names),
    }

    # -- where ---------------------------------------------------------------------------------
    @property
    def conn(self) -> Any:
        if self.config.get("host"):
            return super().conn
        with self._lock:
            if self._conn is None:
                from cosmoskit_ssh.local_connection import LocalConnection

                self._conn = LocalConnection(self.label)
            return self._conn

    def _expand(self, path: str) -> str:
        if not self.config.get("host"):
            import os

            return os.path.expanduser(path)
        return super()._expand(path)

    def handle_base(self) -> dict[str, Any]:
        return {"host": self.config.get("host") or "localhost", "cluster": self.label}

    def concurrency(self) -> int:
        return int(self.config["concurrency"])

    def _slurm(self, command: str) -> str:
        env = " ".join(f"{k}={q(str(v))}" for k, v in (self.config.get("slurm_env") or {}).items())
        return f"env {env} {command}" if env else command

    # -- running -------------------------------------------------------------------------------
    def sbatch_script(self, job: BatchJob, batch_dir: str) -> str:
        name = f"cosmos_{job.operation.name}_{job.id.split('_', 1)[1][:8]}"
        lines = ["#!/bin/bash", f"#SBATCH --job-name={name}", f"#SBATCH --output={batch_dir}/slurm-%j.out",
                 f"#SBATCH --chdir={batch_dir}", "#SBATCH --nodes=1", "#SBATCH --ntasks=1",
                 # cosmoskit requeues the unfinished runs itself (re-planned, counted as an attempt);
                 # a job Slurm restarted behind its back would run finished lines again
                 "#SBATCH --no-requeue"]
        if self.config["gpus_per_job"]:
            lines.append(f"#SBATCH --gres=gpu:{self.config['gpus_per_job']}")
        for key, flag in (("partition", "--partition"), ("account", "--account"), ("time_limit", "--time")):
            if self.config.get(key):
                lines.append(f"#SBATCH {flag}={self.config[key]}")
        lines += [f"#SBATCH {d}" for d in self.config.get("extra_directives") or []]
        lines += ["# written by cosmoskit: the launcher runs the model and writes batch.log and exit_code here",
                  f"exec bash {q(batch_dir + '/launch.sh')} {q(batch_dir)}", ""]
        return "\n".join(lines)

    def launch(self, job: BatchJob) -> dict[str, Any]:
        batch_dir = self.remote_dir(job)
        script = self.sbatch_script(job, batch_dir)
        job.write_text("job.sbatch", script)
        out = self.conn.run(f"cat > {q(batch_dir + '/job.sbatch')} && "
                            + self._slurm(f"sbatch --parsable {q(batch_dir + '/job.sbatch')}"),
                            stdin=script.encode(), what="submit the batch (sbatch)").text.strip()
        job_id = out.split(";")[0]
        if not job_id.isdigit():
            raise CosmoskitError(f"{self.label}: sbatch did not return a job id: {out!r}")
        return {"job_id": job_id}

    def _job_state(self, job_id: str) -> tuple[str, str, str]:
        """(state, reason, exit code) from squeue, then sacct (when accounting exists), then scontrol.

        ("", "", "") means Slurm no longer knows the job. A controller that does not answer (busy,
        restarting, unreachable) raises instead: taking silence for a forgotten job would requeue
        runs that are still running."""
        script = "; ".join([
            self._slurm(f"squeue -h -j {q(job_id)} -o '@@squeue %T|%r' 2>&1") + " | sed '/^@@/!s/^/@@error /'",
            self._slurm(f"sacct -n -X -P -j {q(job_id)} -o State,ExitCode 2>/dev/null | sed 's/^/@@sacct /'"),
            self._slurm(f"scontrol -o show job {q(job_id)} 2>&1") + " | sed 's/^/@@scontrol /'",
            "true",
        ])
        text = self.conn.run(script, what="ask Slurm about the job").text
        for line in text.splitlines():
            if line.startswith("@@squeue "):
                state, _, reason = line[9:].partition("|")
                return state.strip(), reason.strip(), ""
        for line in text.splitlines():
            if line.startswith("@@sacct ") and "|" in line:
                state, _, code = line[8:].partition("|")
                return state.split()[0].strip(), "", code.strip()
        errors = [line.split(" ", 1)[1] for line in text.splitlines() if line.startswith("@@error ")]
        for line in text.splitlines():
            if line.startswith("@@scontrol "):
                fields = dict(f.split("=", 1) for f in line[11:].split() if "=" in f)
                if "JobState" in fields:
                    return fields["JobState"], fields.get("Reason", ""), fields.get("ExitCode", "")
                errors.append(line[11:])
        if errors and not any("invalid job id" in e.lower() for e in errors):
            raise CosmoskitError(f"{self.label}: Slurm did not answer about job {job_id}: {errors[-1].strip()}",
                                 hint="the batch is left as it is and asked about again")
        return "", "", ""

    def poll(self, handle: dict[str, Any]) -> PollResult:
        batch_dir = handle["batch_dir"]
        found = self.conn.run(f"cd {q(batch_dir)} 2>/dev/null && cat exit_code 2>/dev/null && "
                              "echo @@stop && cat stop_reason 2>/dev/null; true", what="poll the batch").text
        text, _, stopped = found.partition("@@stop")
        text = text.strip()
        exited = int(text) if text.lstrip("-").isdigit() else None
        job_id = handle.get("job_id")
        # A launcher that ended on its own is believed at once. One that was signalled may have been
        # stopped by a failed node or a preemption, which it cannot tell from a cancel; Slurm can.
        if exited is not None and not (job_id and stopped.strip()):
            return PollResult("exited", exited)
        if not job_id:
            return PollResult("vanished", detail="no Slurm job id recorded")
        state, reason, code = self._job_state(str(job_id))
        info = {"slurm_state": state, "slurm_reason": reason, "job_id": job_id}
        if state in LOST:
            # Whatever the launcher wrote on its way down (or writes just now): the node failed.
            return PollResult("vanished", detail=f"Slurm job {job_id} ended {state}", info=info)
        if state in ALIVE:
            # A job killed on a failed node shows COMPLETING until its processes are gone, and only
            # then NODE_FAIL: until Slurm settles it, a signalled batch is still stopping.
            detail = (f"stopping ({state})" if exited is not None
                      else f"{state} ({reason})" if reason and reason != "None" else state)
            return PollResult("running", detail=detail, info=info)
        if exited is not None:
            return PollResult("exited", exited, info=info)
        # The job is over but the launcher left no exit code: look again (shared filesystems lag), then decide.
        text = self.conn.run(f"cat {q(batch_dir + '/exit_code')} 2>/dev/null; true", what="poll the batch").text.strip()
        if text.lstrip("-").isdigit():
            return PollResult("exited", int(text), info=info)
        if state.startswith("CANCELLED"):
            self._mark(batch_dir, "cancelled")
            return PollResult("exited", None, detail="cancelled with scancel", info=info)
        if state == "TIMEOUT":
            self._mark(batch_dir, "timeout")
            return PollResult("exited", None, detail="Slurm time limit reached", info=info)
        if not state:
            return PollResult("vanished", detail=f"Slurm job {job_id} ended and was forgotten "
                                                 "before its launcher wrote an exit code", info=info)
        exit_code = code.split(":")[0] if code else ""
        return PollResult("exited", int(exit_code) if exit_code.isdigit() else None, detail=state, info=info)

    def _mark(self, batch_dir: str, reason: str) -> None:
        self.conn.run(f"cd {q(batch_dir)} && {{ [ -f stop_reason ] || echo {q(reason)} > stop_reason; }}; true",
                      what="record why the job stopped")

    def cancel(self, handle: dict[str, Any]) -> None:
        batch_dir = handle["batch_dir"]
        self._mark(batch_dir, handle.get("reason", "cancelled"))
        if handle.get("job_id"):
            self.conn.run(self._slurm(f"scancel {q(str(handle['job_id']))}") + "; true", what="scancel the job")

    # -- looking -------------------------------------------------------------------------------
    def status(self) -> ExecutorStatus:
        out = ExecutorStatus(host=self.config.get("host") or "localhost", reachable=False,
                             gpu_note="per-GPU figures come from the nodes; see the partitions' GRES")
        script = "; ".join([
            "echo @@sinfo", self._slurm("sinfo -h -o '%P|%a|%D|%t|%G|%N' 2>&1"),
            "echo @@squeue", self._slurm("squeue -h --me -o '%i|%j|%T|%r|%M|%b' 2>&1 || "
                                         + self._slurm("squeue -h -o '%i|%j|%T|%r|%M|%b' 2>&1")),
            "echo @@disk", f"mkdir -p {q(self.root)} && df -Pk {q(self.root)} | tail -1",
        ])
        try:
            text = self.conn.run(script, what="read the cluster's status", check=False).text
        except CosmoskitError as exc:
            out.error = str(exc)
            return out
        sections = remote.sections(text)
        partitions = [dict(zip(("partition", "available", "nodes", "state", "gres", "nodelist"), line.split("|"),
                               strict=False))
                      for line in sections.get("sinfo", []) if "|" in line]
        out.reachable = bool(partitions)
        if not partitions:
            out.error = " ".join(sections.get("sinfo", []))[:300] or "sinfo printed nothing"
        out.extra["partitions"] = partitions
        out.lines = [f"partition {p['partition']} ({p['available']}): {p['nodes']} node(s) {p['state']}, "
                     f"GRES {p['gres']}"
                     for p in partitions]
        for line in sections.get("squeue", []):
            fields = line.split("|")
            if len(fields) >= 6 and fields[1].startswith("cosmos_"):
                job_id, name, state, reason, elapsed, gres = fields[:6]
                out.jobs.append(HostJob("Slurm job", job_id, name=name, state=state, reason=reason,
                                        detail=f"{elapsed}, {gres}" if gres not in ("", "N/A") else elapsed,
                                        handle_key="job_id", handle_value=job_id))
        disk = (sections.get("disk") or [""])[0].split()
        if len(disk) >= 4 and disk[3].isdigit():
            out.disk_free_bytes = int(disk[3]) * 1024
        return out

    def kill_all(self) -> list[str]:
        status = self.status()
        if not status.reachable:
            raise CosmoskitError(status.error or f"{self.label} is unreachable")
        ids = [j.id for j in status.jobs if j.kind == "Slurm job"]
        if ids:
            self.conn.run(self._slurm(f"scancel {' '.join(q(i) for i in ids)}") + "; true", what="scancel our jobs")
        return ids
