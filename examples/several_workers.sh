#!/usr/bin/env bash
# Several workers share one study: two processes on this machine (more can join from other machines).
#
#   bash examples/several_workers.sh
#
# The study's budget is shared exactly (a lock that lives with the storage), so the study ends with
# exactly --n-trials finished trials. On many machines, point every one at a shared PostgreSQL storage and
# tracking server and run `python -m tuner worker --study shared` there (docs/scale-out.md).
set -euo pipefail
if [ "${TUNER_EXAMPLE_SMOKE:-0}" = 1 ]; then trials=3; epochs=1; else trials=24; epochs=20; fi

# this process and one `python -m tuner worker` that it starts
python -m tuner study --study shared --workers 2 --n-trials "$trials" --set epochs="$epochs"

python -m tuner best shared
