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
# A column saying the person agreed to be messaged (LGPD): recorded in the consent ledger.
CONSENT_HEADERS = ("opt_in", "optin", "consent", "consentimento", "aceite")
AGREED = frozenset({"sim", "s", "yes", "y", "true", "1", "x"})
MAX_VARIABLE_LENGTH = 500


@dataclass(frozen=True, slots=True)
class ContactRow:
    """One contact as given (phone not yet normalised), with the line it came from."""

    phone: str
    name: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    line: int | None = None
    # The list says the person agreed to be messaged (never overrides an opt-out).
    opted_in: bool = False


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
    known = _Columns(phone_index, _find(columns, NAME_HEADERS), _find(columns, CONSENT_HEADERS))
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue
        yield _row(cells, columns, known, reader.line_num)


def _find(columns: list[str], names: tuple[str, ...]) -> int | None:
    for name in names:
        if name in columns:
            return columns.index(name)
    return None


@dataclass(frozen=True, slots=True)
class _Columns:
    """Where the columns that are not variables are."""

    phone: int
    name: int | None
    consent: int | None


def _row(cells: list[str], columns: list[str], known: _Columns, line: int) -> ContactRow:
    def cell(index: int | None) -> str:
        return cells[index].strip() if index is not None and index < len(cells) else ""

    variables = {
        column: cell(index)[:MAX_VARIABLE_LENGTH]
        for index, column in enumerate(columns)
        if index not in (known.phone, known.name, known.consent) and column and cell(index)
    }
    return ContactRow(
        phone=cell(known.phone),
        name=cell(known.name) or None,
        variables=variables,
        line=line,
        opted_in=cell(known.consent).lower() in AGREED,
    )
