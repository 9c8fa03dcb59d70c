#!/usr/bin/env bash
# launch.sh BATCH_DIR -- run one batch of the model in BATCH_DIR, detached from any client.
#
# cosmoskit starts it with `setsid nohup bash launch.sh DIR </dev/null >/dev/null 2>&1 &`, so it keeps
# going when the SSH connection or the client process goes away.
#
# Reads   launch.env     RUNTIME (docker|direct|emulator), CONTAINER, DOCKER, IMAGE, REPO, CKPT, GPUS,
#                        TORCHRUN, PYTHON, EMULATOR, TIMEOUT_SECONDS, MODEL_ENV_NAMES, and `export`s
#         command.args   the model's argv (torchrun ... transfer.py ...), NUL-separated: no shell ever
#                        parses it, so prompt text and paths need no quoting
# Writes  launcher.pid   this script's pid (also its process group: setsid made it a session leader)
#         batch.log      everything the model prints
#         stop_reason    "cancelled" or "timeout" when the batch was stopped
#         exit_code      last, atomically: its presence means the batch is over
set -u
cd "$1" || exit 97
BATCH_DIR=$(pwd -P)
echo $$ > launcher.pid.tmp && mv -f launcher.pid.tmp launcher.pid
date -u +%Y-%m-%dT%H:%M:%S.%3NZ > started_at
# shellcheck disable=SC1091
. ./launch.env
mapfile -d '' ARGV < command.args
exec >> batch.log 2>&1 < /dev/null

say() { echo "[cosmoskit-launcher] $(date -u +%H:%M:%S) $*"; }

case "${RUNTIME:-emulator}" in
  docker)
    read -r -a DOCKER_CMD <<< "${DOCKER:-docker}"
    ENV_ARGS=()
    for name in ${MODEL_ENV_NAMES:-}; do ENV_ARGS+=(-e "$name"); done
    # CONTRACT §6: the repo mounted at /workspace, --ipc=host for torchrun's shared memory; the
    # checkpoints and this batch folder mounted at their own paths so the spec's paths hold inside.
    CMD=("${DOCKER_CMD[@]}" run --rm --name "$CONTAINER" --gpus "${GPUS:-all}" --ipc=host
         -v "$REPO:/workspace" -v "$CKPT:$CKPT" -v "$BATCH_DIR:$BATCH_DIR"
         -w /workspace -e PYTHONPATH=/workspace "${ENV_ARGS[@]}" "$IMAGE" "${ARGV[@]}")
    ;;
  direct)
    [ "${ARGV[0]}" = torchrun ] && ARGV[0]="${TORCHRUN:-torchrun}"
    cd "$REPO" || { say "cannot enter the Cosmos repo $REPO"; echo 96 > "$BATCH_DIR/exit_code"; exit 96; }
    export PYTHONPATH="$REPO"
    CMD=("${ARGV[@]}")
    ;;
  emulator)
    CMD=("${PYTHON:-python3}" "$EMULATOR" "${ARGV[@]}")
    ;;
  *)
    say "unknown runtime ${RUNTIME}"; echo 95 > exit_code; exit 95
    ;;
esac

say "batch ${BATCH_ID:-?} starting, runtime ${RUNTIME:-emulator}, container ${CONTAINER:-}"

CHILD=""
stop_model() {
  [ -s "$BATCH_DIR/stop_reason" ] || echo "$1" > "$BATCH_DIR/stop_reason"
  say "stop requested: $(cat "$BATCH_DIR/stop_reason")"
  if [ "${RUNTIME:-}" = docker ]; then "${DOCKER_CMD[@]}" kill "$CONTAINER" > /dev/null 2>&1 || true; fi
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
setsid "${CMD[@]}" &
CHILD=$!

WATCHDOG=""
if [ "${TIMEOUT_SECONDS:-0}" -gt 0 ] 2> /dev/null; then
  (
    trap 'kill "$NAP" 2> /dev/null; exit 0' TERM
    sleep "$TIMEOUT_SECONDS" & NAP=$!
    wait "$NAP"
    echo timeout > "$BATCH_DIR/stop_reason"
    kill -TERM $$
  ) &
  WATCHDOG=$!
fi

wait "$CHILD"; CODE=$?
# A trapped signal interrupts `wait`; keep waiting until the model has really exited.
while kill -0 "$CHILD" 2> /dev/null; do wait "$CHILD"; CODE=$?; done
[ -n "$WATCHDOG" ] && kill "$WATCHDOG" 2> /dev/null

say "model exited with code $CODE"
date -u +%Y-%m-%dT%H:%M:%S.%3NZ > finished_at
echo "$CODE" > exit_code.tmp && mv -f exit_code.tmp exit_code
