"""Text cells for CSV files a person may open in a spreadsheet, safe from formula injection.

A spreadsheet runs a cell that starts with `=`, `+`, `-` or `@` (and, in some, a tab or carriage
return before one) as a formula: `=HYPERLINK(...)` can leak data, `+cmd|' /C calc'!A0` can run a
program. Following OWASP's advice (https://owasp.org/www-community/attacks/CSV_Injection), such
a cell gets a single quote in front, so the spreadsheet shows it as text. Apply it to text that
comes from users (texts, labels), not to the numbers lmops formats itself. Imports nothing heavy.
"""

from __future__ import annotations

#: The first characters that make a spreadsheet treat a cell as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """`value` as text, with a `'` in front when it starts with one of FORMULA_STARTS."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text
