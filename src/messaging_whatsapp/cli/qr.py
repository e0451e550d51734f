"""QR codes drawn in the terminal, for linking a phone to a gateway (Evolution API, WuzAPI).

Codes are drawn with Unicode half blocks, two module rows per text line. Evolution gives the
code's text, which segno turns back into modules; WuzAPI gives only a PNG, whose module grid is
read back from the pixels (pypng decodes it, without Pillow). By default the light modules are
drawn (for the usual dark terminal background); `invert` draws the dark ones instead.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import zlib
from collections.abc import Sequence
from typing import TextIO

import png  # type: ignore[import-untyped]
import segno

Matrix = list[list[bool]]
# Light modules around the code that scanners need (ISO 18004 asks for 4).
QUIET_ZONE = 4
_FINDER = 7
_MAX_PNG_SIDE = 4096
_HALF_BLOCKS = {(True, True): "█", (True, False): "▀", (False, True): "▄", (False, False): " "}


class QrDrawError(ValueError):
    """The QR code could not be read back into modules (not a PNG, or no code in it)."""


def matrix_from_text(text: str) -> Matrix:
    """The modules (True = dark, no quiet zone) of the QR code that encodes ``text``."""
    qr = segno.make_qr(text)
    return [[bool(module) for module in row] for row in qr.matrix_iter(scale=1, border=0)]


def _dark_pixels(data: bytes) -> list[list[bool]]:
    try:
        reader = png.Reader(bytes=data)
        reader.preamble()
        if reader.width > _MAX_PNG_SIDE or reader.height > _MAX_PNG_SIDE:
            raise QrDrawError(f"the QR image is too large ({reader.width}x{reader.height})")
        width, _height, rows, _info = reader.asRGBA8()
        pixels: list[list[bool]] = []
        for row in rows:
            values = list(row)
            pixels.append(
                [
                    values[4 * x + 3] >= 128
                    and (299 * values[4 * x] + 587 * values[4 * x + 1] + 114 * values[4 * x + 2]) < 128_000
                    for x in range(width)
                ]
            )
    except (png.Error, zlib.error, ValueError, EOFError, IndexError) as exc:
        if isinstance(exc, QrDrawError):
            raise
        raise QrDrawError(f"the QR image is not a readable PNG ({exc})") from exc
    return pixels


def _is_finder(matrix: Matrix, top: int, left: int) -> bool:
    """Whether the 7x7 square at (top, left) is a finder pattern: dark ring, light ring, dark core."""
    for row in range(_FINDER):
        for col in range(_FINDER):
            ring = min(row, col, _FINDER - 1 - row, _FINDER - 1 - col)
            if matrix[top + row][left + col] != (ring != 1):
                return False
    return True


def _size_from_timing(row: Sequence[bool]) -> int | None:
    """Modules per side from the pixel row through module row 6, or None when it does not add up.

    That row is the finders' bottom edges (7 dark modules at each end) joined by the timing pattern
    (alternating, dark first and last) with one light separator on each side: n - 12 runs in all.
    """
    runs = 1 + sum(1 for before, after in itertools.pairwise(row) if before != after)
    size = runs + 12
    if 21 <= size <= 177 and size % 4 == 1 and row[0] and row[-1]:
        return size
    return None


def matrix_from_pixels(dark: Sequence[Sequence[bool]]) -> Matrix:
    """The modules of the one QR code in a bitmap, however many pixels wide its modules are.

    The code's extent is the box around its dark pixels; the top-left finder pattern (7 modules
    wide) gives the module size roughly, the timing pattern the exact number of modules, and each
    module is read at its centre. Scaling that is not a whole number of pixels per module (WuzAPI's
    256-pixel images) is fine as long as every module is at least about a pixel and a half.
    """
    lines = [(y, row) for y, row in enumerate(dark) if any(row)]
    if not lines:
        raise QrDrawError("there is no QR code in the image")
    top, bottom = lines[0][0], lines[-1][0]
    left = min(list(row).index(True) for _, row in lines)
    right = max(len(row) - 1 - list(row)[::-1].index(True) for _, row in lines)
    width, height = right - left + 1, bottom - top + 1
    run = 0
    while left + run <= right and dark[top][left + run]:
        run += 1
    module = run / _FINDER
    if module < 1 or abs(width - height) > 2 * module:
        raise QrDrawError("the image does not look like a QR code")
    size = _size_from_timing(dark[top + int(6.5 * module)][left : right + 1])
    if size is None:
        version = max(1, min(40, round((width / module - 17) / 4)))
        size = 17 + 4 * version
    pitch_x, pitch_y = width / size, height / size
    matrix = [
        [dark[top + int((r + 0.5) * pitch_y)][left + int((c + 0.5) * pitch_x)] for c in range(size)]
        for r in range(size)
    ]
    corners = ((0, 0), (0, size - _FINDER), (size - _FINDER, 0))
    if not all(_is_finder(matrix, row, col) for row, col in corners):
        raise QrDrawError("could not find the QR code's corner patterns in the image")
    return matrix


def matrix_from_png(data: bytes) -> Matrix:
    """The modules of the QR code drawn in a PNG image."""
    return matrix_from_pixels(_dark_pixels(data))


def qr_lines(matrix: Matrix, *, invert: bool = False) -> list[str]:
    """The code as half-block text lines with its quiet zone.

    Light modules are ink by default, so the code reads correctly on a dark terminal; with
    ``invert`` the dark modules are ink, for a light background.
    """
    size = len(matrix)
    total = size + 2 * QUIET_ZONE

    def ink(row: int, col: int) -> bool:
        if row >= total:
            return False  # below the drawing: the terminal's own background
        r, c = row - QUIET_ZONE, col - QUIET_ZONE
        is_dark = 0 <= r < size and 0 <= c < size and matrix[r][c]
        return is_dark == invert

    return [
        "".join(_HALF_BLOCKS[ink(row, col), ink(row + 1, col)] for col in range(total)).rstrip()
        for row in range(0, total, 2)
    ]


def _ascii_lines(matrix: Matrix, *, invert: bool) -> list[str]:
    """Two characters per module, one line per module row: for terminals without block characters."""
    size = len(matrix)
    total = size + 2 * QUIET_ZONE
    lines = []
    for row in range(total):
        cells = []
        for col in range(total):
            r, c = row - QUIET_ZONE, col - QUIET_ZONE
            is_dark = 0 <= r < size and 0 <= c < size and matrix[r][c]
            cells.append("##" if is_dark == invert else "  ")
        lines.append("".join(cells).rstrip())
    return lines


def challenge_matrix(qr_code: str | None, qr_image_base64: str | None) -> Matrix | None:
    """The modules to draw: from the code's text when the gateway gave it, else from its PNG."""
    if qr_code:
        return matrix_from_text(qr_code)
    if qr_image_base64:
        try:
            data = base64.b64decode(qr_image_base64, validate=False)
        except (binascii.Error, ValueError) as exc:
            raise QrDrawError(f"the QR image is not valid base64 ({exc})") from exc
        return matrix_from_png(data)
    return None


def draw_qr(matrix: Matrix, stream: TextIO, *, invert: bool = False) -> None:
    """Write the code to ``stream``, in ASCII when its encoding has no block characters."""
    try:
        "█▀▄".encode(getattr(stream, "encoding", None) or "utf-8")
        lines = qr_lines(matrix, invert=invert)
    except (UnicodeEncodeError, LookupError):
        lines = _ascii_lines(matrix, invert=invert)
    stream.write("\n".join(lines) + "\n")
    stream.flush()
