"""Reading campaign contacts from a CSV file: phone, name, and any other column as a variable.

Spreadsheets exported in Brazil use `;` and often Latin-1; both are recognised. Rows are checked
here (a phone that cannot be a WhatsApp number is reported with its line number); merging
duplicates and excluding opt-outs happen when the rows are added to a campaign.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field

from messaging_whatsapp.errors import InvalidInput

PHONE_HEADERS = ("phone", "telefone", "celular", "whatsapp", "numero", "número", "fone", "mobile")
NAME_HEADERS = ("name", "nome", "first_name", "primeiro_nome")
MAX_VARIABLE_LENGTH = 500


@dataclass(frozen=True, slots=True)
class ContactRow:
    """One contact as given (phone not yet normalised), with the line it came from."""

    phone: str
    name: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    line: int | None = None


def decode(data: bytes) -> str:
    """The file's text: UTF-8 (with or without BOM), else Latin-1 (Excel's default in Brazil)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def read_csv(text: str) -> Iterator[ContactRow]:
    """The rows of a CSV with a header naming the phone column; InvalidInput when it has none."""
    lines = io.StringIO(text, newline="")
    sample = text[:4096]
    delimiter = ";" if sample.count(";") > sample.count(",") else ","
    reader = csv.reader(lines, delimiter=delimiter)
    header = next(reader, None)
    if header is None:
        raise InvalidInput("the CSV file is empty", code="invalid_csv")
    columns = [column.strip().lower() for column in header]
    phone_index = _find(columns, PHONE_HEADERS)
    if phone_index is None:
        raise InvalidInput(
            f"the CSV header has no phone column (one of: {', '.join(PHONE_HEADERS)})", code="invalid_csv"
        )
    name_index = _find(columns, NAME_HEADERS)
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue
        yield _row(cells, columns, phone_index, name_index, reader.line_num)


def _find(columns: list[str], names: tuple[str, ...]) -> int | None:
    for name in names:
        if name in columns:
            return columns.index(name)
    return None


def _row(
    cells: list[str], columns: list[str], phone_index: int, name_index: int | None, line: int
) -> ContactRow:
    def cell(index: int) -> str:
        return cells[index].strip() if index < len(cells) else ""

    variables = {
        column: cell(index)[:MAX_VARIABLE_LENGTH]
        for index, column in enumerate(columns)
        if index not in (phone_index, name_index) and column and cell(index)
    }
    name = cell(name_index) if name_index is not None else ""
    return ContactRow(phone=cell(phone_index), name=name or None, variables=variables, line=line)
