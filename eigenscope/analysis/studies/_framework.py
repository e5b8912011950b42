"""What a study is, what it gets while it runs, and what it hands back.

A :class:`Study` names a seed's experiment and the function that runs it. The function
receives a :class:`StudyContext` (quick or full scale, the seed, the device, where its
figures go) and returns a :class:`StudyOutput`: the claims with their measured numbers,
the data behind the figures, tables and notes. :func:`run_study` (in ``__init__``) adds
the timing and writes ``results.json``, the figures and ``report.html``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._output import OutputDir
from .._progress import ProgressFactory, no_progress
from ._verdicts import Claim


@dataclass(frozen=True)
class Table:
    """A table of the report (and of ``results.json``): a title, a header and rows."""

    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    note: str = ""

    def __init__(self, title: str, header: Sequence[str], rows: Sequence[Sequence[Any]], note: str = "") -> None:
        object.__setattr__(self, "title", title)
        object.__setattr__(self, "header", tuple(header))
        object.__setattr__(self, "rows", tuple(tuple(r) for r in rows))
        object.__setattr__(self, "note", note)

    def to_json(self) -> dict[str, Any]:
        """The table in ``results.json``."""
        return {
            "title": self.title,
            "header": list(self.header),
            "rows": [list(r) for r in self.rows],
            "note": self.note,
        }


@dataclass(frozen=True)
class FigureRecord:
    """A figure written by the study: its name, caption and files (PNG first)."""

    name: str
    caption: str
    files: tuple[str, ...]


@dataclass(frozen=True)
class StudyOutput:
    """What a study's run function returns.

    Parameters
    ----------
    claims
        The seed's claims, each with the criteria that decide it.
    data
        The numbers behind the figures (JSON-able: lists, dicts, floats), saved in
        ``results.json`` under ``"data"``.
    tables
        Tables shown in the report (and saved).
    notes
        What the reader must know to weigh the result: scale, stand-in data sets, what was
        exact and what was estimated.
    settings
        The settings the study ran with (sizes, epochs, batch size, replicates, ...).
    """

    claims: tuple[Claim, ...]
    data: dict[str, Any] = field(default_factory=dict)
    tables: tuple[Table, ...] = ()
    notes: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class StudyContext:
    """What a running study gets.

    Attributes
    ----------
    quick
        True for the reduced run (≤ 1 minute on 2 CPU cores; used by the tests).
    seed
        The base seed; :meth:`replicate_seeds` derives the replicates' seeds from it.
    device
        The torch device the study should compute on (``"cpu"``, ``"cuda"``, ...).
    progress
        A progress factory (``progress(name, total)`` → a bar with ``update``/``close``).
    """

    quick: bool
    seed: int
    device: str
    out: OutputDir
    progress: ProgressFactory = no_progress
    figures: list[FigureRecord] = field(default_factory=list)

    def replicate_seeds(self, full: int, quick: int = 1) -> list[int]:
        """Seeds of the replicates: ``full`` of them (``quick`` with ``--quick``), from the base seed."""
        count = quick if self.quick else full
        return [self.seed * 1000 + i for i in range(count)]

    def pick(self, full: Any, quick: Any) -> Any:
        """``quick`` in a quick run, ``full`` otherwise (sizes, epochs, steps)."""
        return quick if self.quick else full

    def figure(self, name: str, fig: Any, caption: str) -> None:
        """Save a matplotlib figure as ``name.png`` and ``name.svg`` and list it in the report."""
        from .._plots import save_figure

        if any(f.name == name for f in self.figures):
            raise ValueError(f"figure {name!r} saved twice")
        paths = save_figure(fig, self.out.file(name))
        self.figures.append(FigureRecord(name, caption, tuple(p.name for p in paths)))


@dataclass(frozen=True)
class Study:
    """A seed's experiment as a command.

    Parameters
    ----------
    name
        The command's name (``eigenscope study NAME``).
    title
        One line: what the study measures.
    source
        The seed it comes from, as the report cites it (``"seed 004: SGD dynamics notes"``).
    run
        ``run(context) -> StudyOutput``. It imports torch inside, so listing the studies
        stays cheap.
    """

    name: str
    title: str
    source: str
    run: Callable[[StudyContext], StudyOutput]
