"""The bytes of one run → messages: line splitting, the format chosen from the first bytes,
and the JSON or CSV decoder."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal, Protocol, TypeVar

from ..errors import ConfigError
from ..input.lines import LineSplitter
from ..input.source import Position
from ..messages import MetricType
from ..samples import Decoded
from .csv_rows import CsvDecoder
from .csv_values import detect_format
from .json_lines import JsonDecoder, Rejection

Format = Literal["auto", "json", "csv"]


C_contra = TypeVar("C_contra", contravariant=True)


class Feed(Protocol[C_contra]):
    """Turns a source's chunks into records: :class:`Decoding` for bytes."""

    fed: int
    """Input units handed over so far (bytes, for a checkpoint's offsets)."""

    @property
    def held(self) -> int: ...

    @property
    def lineno(self) -> int: ...

    @property
    def rejoined(self) -> int: ...

    def feed(self, chunk: C_contra, out: list[Decoded]) -> None: ...

    def finish(self, out: list[Decoded]) -> None: ...


class LineDecoder(Protocol):
    lineno: int
    rejoined: int

    @property
    def held(self) -> int: ...

    def decode(self, lines: list[bytes], out: list[Decoded]) -> None: ...

    def finish(self, tail: bytes | None, out: list[Decoded]) -> None: ...


class Decoding:
    """Feeds chunks through a :class:`LineSplitter` into the decoder for the stream's format."""

    def __init__(
        self,
        on_console: Callable[[bytes], None],
        on_reject: Callable[[Rejection], None],
        start: Position,
        format: Format = "auto",
        metric_types: Mapping[str, MetricType] | None = None,
    ) -> None:
        self._on_console = on_console
        self._on_reject = on_reject
        self._start = start
        self._format = format
        self._metric_types = metric_types or {}
        self._splitter = LineSplitter()
        self._decoder: LineDecoder | None = None
        self._head = b""
        self.fed = 0
        """Bytes handed to the line splitter so far."""

    def feed(self, chunk: bytes, out: list[Decoded]) -> None:
        """Decode ``chunk`` (after the format is known), appending messages to ``out``."""
        decoder = self._decoder
        if decoder is None:
            self._head += chunk
            decoder = self._choose(out, at_end=False)
            if decoder is None:
                return
            chunk, self._head = self._head, b""
        self.fed += len(chunk)
        if isinstance(decoder, JsonDecoder):
            text = self._splitter.feed_text(chunk)
            if text is not None:
                decoder.decode_text(text, out)
                return
        decoder.decode(self._splitter.feed(chunk), out)

    def finish(self, out: list[Decoded]) -> None:
        """Decode what is left at the end of the input."""
        decoder = self._decoder or self._choose(out, at_end=True)
        if decoder is None:
            return
        if self._head:
            chunk, self._head = self._head, b""
            self.fed += len(chunk)
            decoder.decode(self._splitter.feed(chunk), out)
        decoder.finish(self._splitter.finish(), out)

    @property
    def held(self) -> int:
        """Bytes fed (``fed``) but not yet turned into messages or rejections."""
        inner = self._decoder.held if self._decoder is not None else 0
        return self._splitter.held + inner

    @property
    def lineno(self) -> int:
        return self._decoder.lineno if self._decoder is not None else self._start.lineno

    @property
    def rejoined(self) -> int:
        return self._decoder.rejoined if self._decoder is not None else 0

    def _choose(self, out: list[Decoded], *, at_end: bool) -> LineDecoder | None:
        kind = self._format
        if kind == "auto":  # a resumed run's first bytes follow the header: look at both
            before = b"".join(line + b"\n" for line in self._start.preamble)
            detected = detect_format(before + self._head, at_end=at_end)
            if detected is None:
                return None
            kind = detected
        decoder: LineDecoder
        if kind == "csv":
            try:
                decoder = CsvDecoder(self._on_console, self._on_reject, self._metric_types)
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
        else:
            decoder = JsonDecoder(self._on_console, self._on_reject)
        if self._start.preamble:  # resuming: the lines from before the offset it needs again
            decoder.decode(list(self._start.preamble), out)
        decoder.lineno = self._start.lineno
        self._decoder = decoder
        return decoder
