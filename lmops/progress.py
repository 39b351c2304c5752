"""A terminal progress bar (on stderr) for fine-tunes, fed by the engine's progress callback."""

from __future__ import annotations

import sys

from tqdm import tqdm


class TrainingBar:
    """`with TrainingBar() as bar: finetune(..., progress=bar.update)`."""

    def __init__(self) -> None:
        self.bar: tqdm | None = None

    def __enter__(self) -> TrainingBar:
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()

    def update(self, progress) -> None:
        if self.bar is None:
            self.bar = tqdm(total=progress.total_steps, desc="fine-tune", unit="step",
                            file=sys.stderr, dynamic_ncols=True,
                             mininterval=0.5 if sys.stderr.isatty() else 15)
        self.bar.total = progress.total_steps
        self.bar.n = progress.step
        postfix = {"epoch": f"{progress.epoch:.2f}"}
        if progress.loss is not None:
            postfix["loss"] = f"{progress.loss:.4f}"
        for key in ("accuracy", "macro_f1", "loss"):
            if key in progress.validation:
                postfix[f"val_{key}"] = f"{progress.validation[key]:.4f}"
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.refresh()
        if progress.stop_note:
            self.bar.write(f"fine-tune {progress.stop_note}", file=sys.stderr)
