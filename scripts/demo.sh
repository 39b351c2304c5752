#!/usr/bin/env bash
# A tour of the CLI on the built-in models and the example data in examples/ (the main job
# until `lmops dev` lands).
set -euo pipefail
cd "$(dirname "$0")/.."
L=.venv/bin/lmops
intents=card_arrival,exchange_rate,lost_or_stolen_card,change_pin,top_up_failed
intents+=,cash_withdrawal_charge,age_limit,country_support,terminate_account,apple_pay_or_google_pay
set -x
$L models
$L classify --labels positive,negative,neutral "I love this app" "The update broke everything" "The meeting is at 3pm"
$L eval --model minilm --labels "$intents" --data examples/banking77/test.csv
$L chat --max-new-tokens 48 "How do I reset my password?"
