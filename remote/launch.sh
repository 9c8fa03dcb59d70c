#!/usr/bin/env bash
# launch.sh BATCH_DIR -- run one batch of the model in BATCH_DIR, detached from any client.
#
# cosmoskit starts it with `setsid nohup bash launch.sh DIR </dev/null >/dev/null 2>&1 &`, so it keeps
# going when the SSH connection or the client process goes away.  It knows no runtime: cosmoskit's
# runtime plugin (docker, direct, emulator …) has already turned the model's argv into the command.
#
# Reads   launch.env     BATCH_ID, CONTAINER, RUNTIME (a label), RUN_DIR (where to run; empty: here),
#                        TIMEOUT_SECONDS, and `export`s for the model process
#         command.args   the command to run, NUL-separated: no shell ever parses it, so prompt text
#                        and paths need no quoting
#         stop.args      (optional) a command run as well when the batch is stopped (`docker kill NAME`)
# Writes  launcher.pid   this script's pid (also its process group: setsid made it a session leader)
#         batch.log      everything the model prints
#         stop_reason    "cancelled" or "timeout" when the batch was stopped
#         started_at, model_started_at, model_exited_at, finished_at   UTC times to the millisecond:
#                        what `cosmoskit calibrate` fits the cost model to
#         exit_code      last, atomically: its presence means the batch is over
set -u
cd "$1" || exit 97
BATCH_DIR=$(pwd -P)
echo $$ > launcher.pid.tmp && mv -f launcher.pid.tmp launcher.pid
date -u +%Y-%m-%dT%H:%M:%S.%3NZ > started_at
# shellcheck disable=SC1091
. ./launch.env
mapfile -d '' CMD < command.args
STOP_CMD=()
[ -f stop.args ] && mapfile -d '' STOP_CMD < stop.args
exec >> batch.log 2>&1 < /dev/null

say() { echo "[cosmoskit-launcher] $(date -u +%H:%M:%S) $*"; }
finish() {
  date -u +%Y-%m-%dT%H:%M:%S.%3NZ > "$BATCH_DIR/finished_at"
  echo "$1" > "$BATCH_DIR/exit_code.tmp" && mv -f "$BATCH_DIR/exit_code.tmp" "$BATCH_DIR/exit_code"
}

if [ -n "${RUN_DIR:-}" ]; then
  cd "$RUN_DIR" || { say "cannot enter $RUN_DIR"; finish 96; exit 96; }
fi

say "batch ${BATCH_ID:-?} starting, runtime ${RUNTIME:-?}, container ${CONTAINER:-}${CUDA_VISIBLE_DEVICES:+, GPUs $CUDA_VISIBLE_DEVICES}"
if [ -s "$BATCH_DIR/stop_reason" ]; then  # stopped between staging and starting: never start the model
  say "stop requested before the model started: $(cat "$BATCH_DIR/stop_reason")"
  finish 143
  exit 143
fi

CHILD=""
stop_model() {
  [ -s "$BATCH_DIR/stop_reason" ] || echo "$1" > "$BATCH_DIR/stop_reason"
  say "stop requested: $(cat "$BATCH_DIR/stop_reason")"
  if [ "${#STOP_CMD[@]}" -gt 0 ]; then "${STOP_CMD[@]}" > /dev/null 2>&1 || true; fi
  if [ -n "$CHILD" ]; then
    kill -TERM -- "-$CHILD" 2> /dev/null || kill -TERM "$CHILD" 2> /dev/null
    (
      for _ in $(seq "${KILL_GRACE_SECONDS:-10}"); do kill -0 "$CHILD" 2> /dev/null || exit 0; sleep 1; done
      kill -KILL -- "-$CHILD" 2> /dev/null
    ) &
  fi
}
trap 'stop_model cancelled' TERM INT HUP

# setsid gives the model its own process group, so a stop reaches torchrun's workers too.
date -u +%Y-%m-%dT%H:%M:%S.%3NZ > model_started_at
setsid "${CMD[@]}" &
CHILD=$!

WATCHDOG=""
if [ "${TIMEOUT_SECONDS:-0}" -gt 0 ] 2> /dev/null; then
  (
    trap 'kill "$NAP" 2> /dev/null; exit 0' TERM
    sleep "$TIMEOUT_SECONDS" & NAP=$!
    # Only a nap that ran its full length is a timeout: a signal to the whole job (Slurm's scancel
    # reaches every process) kills the nap early, and that is a cancel, not a timeout.
    wait "$NAP" || exit 0
    [ -s "$BATCH_DIR/stop_reason" ] || echo timeout > "$BATCH_DIR/stop_reason"
    kill -TERM $$
  ) &
  WATCHDOG=$!
fi

wait "$CHILD"; CODE=$?
# A trapped signal interrupts `wait`; keep waiting until the model has really exited.
while kill -0 "$CHILD" 2> /dev/null; do wait "$CHILD"; CODE=$?; done
date -u +%Y-%m-%dT%H:%M:%S.%3NZ > "$BATCH_DIR/model_exited_at"
[ -n "$WATCHDOG" ] && kill "$WATCHDOG" 2> /dev/null

say "model exited with code $CODE"
finish "$CODE"
