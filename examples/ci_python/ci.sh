#!/bin/sh
# A Python project's tests against the QStash dev server, as a CI job runs them.
# Run from anywhere: sh examples/ci_python/ci.sh (QSTASH_EMULATOR_PORT picks another port).
set -eu
cd "$(dirname "$0")"
port="${QSTASH_EMULATOR_PORT:-8080}"

# 1. Install the emulator (its [pytest] extra brings pytest and the qstash SDK).
python -m pip install --quiet \
  "${QSTASH_EMULATOR_PACKAGE:-qstash-emulator[pytest] @ git+https://github.com/OWNER/qstash-emulator}"

# 2. Start it in the background; stop it however this script ends.
qstash-emulator dev --port "$port" --quiet > emulator.log 2>&1 &
emulator=$!
trap 'kill "$emulator" 2> /dev/null || true' EXIT

# 3. Wait until it answers (exit 1 with the reason after 30 s), then read the .env block it
#    printed once ready: QSTASH_URL, QSTASH_TOKEN and the two signing keys.
qstash-emulator wait --url "http://127.0.0.1:$port" --timeout 30
grep '^QSTASH_' emulator.log > qstash.env
set -a
. ./qstash.env
set +a

# 4. Test.
python -m pytest -q tests

# 5. Stop: SIGTERM lets what is under way finish, then the server exits 0 (1 if it had to
#    drop something after --drain-timeout, 10 s by default): `wait` fails the job only then.
kill "$emulator"
wait "$emulator"
