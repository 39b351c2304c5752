"""A small, easy 3-label data set of support tickets (billing, bug, praise), built from
templates, for checking that a default fine-tune is worth keeping. The training and held-out
rows are filled from disjoint word lists, so no held-out text is a training text.

    rows = tickets("train", per_label=40)   # 120 (text, label) rows
    held = tickets("held_out", per_label=20)
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

TEMPLATES = {
    "billing": [
        "I was charged twice for {thing}", "Why did {plan} cost more this month?",
        "Please refund the charge for {thing}", "My card was billed after I cancelled {plan}",
        "The receipt for {thing} shows the wrong amount", "How do I change the card I pay {plan} with?",
        "I need a VAT invoice for {thing}", "You took money for {thing} that I never ordered",
        "Can I get my money back for {plan}?", "The price of {plan} doesn't match the website",
    ],
    "bug": [
        "The app crashes when I open {screen}", "{screen} is blank since the update",
        "I get error 500 when I save {screen}", "{screen} freezes on {device}",
        "The buttons on {screen} do nothing on {device}", "Login keeps sending me back to {screen} on {device}",
        "Notifications stopped working on {device}", "{screen} won't load at all",
        "Uploading a photo to {screen} fails every time", "Dark mode breaks {screen} on {device}",
    ],
    "praise": [
        "Thanks, {team} was fantastic", "Love the new {screen}, great work",
        "{team} fixed my issue in minutes, thank you!", "The redesign of {screen} is beautiful",
        "Best support I've had, kudos to {team}", "Really happy with {plan}, worth every penny",
        "Great job on the latest update to {screen}", "{team} went above and beyond, thanks",
        "I recommend you to everyone, {plan} is excellent", "Everything is so smooth on {device} now, well done",
    ],
}
# Two disjoint lists per slot: index 0 fills training rows, index 1 held-out rows.
FILLERS = {
    "thing": (["my subscription", "the annual plan", "order 4417", "the storage add-on", "my renewal"],
              ["the upgrade", "invoice 9982", "the family pack", "last month's order", "the gift card"]),
    "plan": (["the Pro plan", "my team plan", "the monthly plan", "the starter plan"],
             ["the Business plan", "my student plan", "the yearly plan", "the premium tier"]),
    "screen": (["the settings page", "the dashboard", "checkout", "my profile"],
               ["the calendar", "search", "the inbox", "the reports page"]),
    "device": (["my iPhone", "Android", "Chrome", "my laptop"],
               ["my iPad", "Firefox", "a Pixel phone", "Safari"]),
    "team": (["your support team", "the billing team", "Anna from support", "the chat team"],
             ["customer care", "the help desk", "Tom at the help desk", "your engineers"]),
}


def tickets(part: str, per_label: int, seed: int = 0) -> list[tuple[str, str]]:
    """`per_label` distinct tickets per label, shuffled; `part` is "train" or "held_out"."""
    side = {"train": 0, "held_out": 1}[part]
    rng = random.Random(f"{part}-{seed}")
    rows: list[tuple[str, str]] = []
    for label, templates in TEMPLATES.items():
        seen: set[str] = set()
        for _ in range(per_label * 50):
            if len(seen) == per_label:
                break
            text = rng.choice(templates).format(
                **{slot: rng.choice(words[side]) for slot, words in FILLERS.items()})
            if text not in seen:
                seen.add(text)
                rows.append((text, label))
        if len(seen) < per_label:
            raise ValueError(f"only {len(seen)} distinct {label} tickets for {part}")
    rng.shuffle(rows)
    return rows


def write_tickets(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path
