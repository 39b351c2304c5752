#!/usr/bin/env bash
# A tour of the CLI on the built-in models (the main job until `lmops dev` lands).
set -euo pipefail
cd "$(dirname "$0")/.."
L=.venv/bin/lmops
slice=$(mktemp -d)/banking77-slice.csv
{ echo "text,category"; grep -E ",(card_arrival|exchange_rate|lost_or_stolen_card)\r?$" ../shared/data/banking77/test.csv | head -60; } > "$slice"
set -x
$L models
$L classify --labels positive,negative,neutral "I love this app" "The update broke everything" "The meeting is at 3pm"
$L eval --model minilm --labels card_arrival,exchange_rate,lost_or_stolen_card --data "$slice"
$L chat --max-new-tokens 48 "How do I reset my password?"
