#!/usr/bin/env bash
# A five-step tour of the CLI on the built-in models and the example data in examples/, each
# step's command and its output shown. Works on a fresh clone: it first installs whatever is
# missing into .venv (scripts/setup.sh, quick when nothing is). LMOPS_CLI names another lmops to
# run (a command line, e.g. "python -m lmops.cli"); the data folder is LMOPS_HOME, else the
# per-user one that `lmops --help` prints.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${LMOPS_CLI:-}" ]; then
  read -r -a L <<<"$LMOPS_CLI"
else
  ./scripts/setup.sh
  L=(.venv/bin/lmops)
fi
intents=card_arrival,exchange_rate,lost_or_stolen_card,change_pin,top_up_failed
intents+=,cash_withdrawal_charge,age_limit,country_support,terminate_account,apple_pay_or_google_pay

n=0
total=5
step() {  # step TITLE ARGS...: print the title and the command, then run `lmops ARGS...`
  n=$((n + 1))
  local title=$1
  shift
  printf '\n==> %d/%d %s\n$ lmops' "$n" "$total" "$title"
  printf ' %q' "$@"
  printf '\n'
  "${L[@]}" "$@"
}
trap 'status=$?; [ "$status" = 0 ] || echo "demo: step $n of $total failed (exit status $status)" >&2' EXIT

step "The models: built-ins, and any you fine-tuned" models
step "Sentiment with the built-in fine-tuned classifier" \
  classify --model sentiment "I love this app" "The update broke everything" "The meeting is at 3pm"
step "Zero-shot: any labels, no training" \
  classify --labels bug,billing,praise "The app crashes when I open settings" \
  "I was charged twice this month" "Great support, thank you!"
step "Evaluate zero-shot intents on 80 BANKING77 questions (examples/banking77)" \
  eval --model minilm --labels "$intents" --data examples/banking77/test.csv
step "Chat with SmolLM2 (the first chat converts it into the data folder once: a minute)" chat --max-new-tokens 48 "How do I reset my password?"
printf '\ndemo: all %d steps done. Next: lmops finetune --data examples/tickets.csv --name tickets-v1\n' "$total"
