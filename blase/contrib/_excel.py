"""The ``excel`` source plugin: one sheet of an Excel or OpenDocument workbook, in batches.

``data: {source: data/sales.xlsx, options: {sheet: Q3, header_row: 2}}`` reads the sheet
``Q3`` whose column names are on row 2 (as Excel numbers rows). python-calamine parses the
sheet (it holds one sheet's cells in memory, in Rust, the most any reader of these zip files
can stream); rows become Python values and Arrow batches of ``batch_rows`` rows at a time.

Column types are taken from the first ``infer_rows`` rows: numbers are float64 (Excel keeps
every number as a double; ``data.dtypes: {id: BIGINT}`` makes an integer column), dates and
times timestamps, booleans booleans, anything else text. Empty cells are null, and wholly empty
rows are skipped. A later value that does not fit its column is an error naming the sheet,
row and column; ``text: [column]`` reads such a column as text.
"""

from __future__ import annotations

import datetime as dt
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from blase.errors import ExtractError
from blase.extract import SourceReader

__all__ = ["ExcelOptions", "ExcelReader"]


class ExcelOptions(BaseModel):
    """``data.options`` of an Excel/ODS source."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sheet: str | int = Field(default=0, description="the sheet's name, or its position from 0")
    header_row: int = Field(default=1, ge=1, description="the row holding the column names (1 = the first)")
    infer_rows: int = Field(default=1000, ge=1, description="rows looked at to choose each column's type")
    text: list[str] = Field(default_factory=list, description="columns read as text whatever they hold")


_NUMBER, _BOOL, _TIME, _TEXT = "number", "bool", "time", "text"
_ARROW = {_NUMBER: pa.float64(), _BOOL: pa.bool_(), _TIME: pa.timestamp("us"), _TEXT: pa.string()}


def _kind(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return _BOOL
    if isinstance(value, (int, float)):
        return _NUMBER
    if isinstance(value, (dt.datetime, dt.date)) and not isinstance(value, dt.time):
        return _TIME
    return _TEXT


def _column_kind(values: list[Any]) -> str:
    kinds = {k for k in map(_kind, values) if k is not None}
    return kinds.pop() if len(kinds) == 1 else _TEXT


def _names(header: list[Any]) -> list[str]:
    names: list[str] = []
    for i, cell in enumerate(header):
        name = str(cell).strip() if cell not in (None, "") else f"column_{i + 1}"
        base, n = name, 2
        while name in names:
            name, n = f"{base}_{n}", n + 1
        names.append(name)
    return names


class ExcelReader(SourceReader):
    """Reads one sheet of ``.xlsx``, ``.xlsm``, ``.xlsb``, ``.xls`` or ``.ods`` files."""

    name = "excel"
    config_model = ExcelOptions

    @property
    def opts(self) -> ExcelOptions:
        return self.options if isinstance(self.options, ExcelOptions) else ExcelOptions()

    def _sheet(self, path: Path) -> Any:
        from python_calamine import CalamineWorkbook

        try:
            book = CalamineWorkbook.from_path(str(path))
        except Exception as exc:  # calamine raises its own error types per file kind
            raise ExtractError(f"{path.name} cannot be opened as a workbook: {type(exc).__name__}: {exc}",
                               hint="check that it is an .xlsx/.xls/.ods file and not open-locked") from None
        sheet = self.opts.sheet
        names = list(book.sheet_names)
        if isinstance(sheet, int):
            if not 0 <= sheet < len(names):
                raise ExtractError(f"{path.name} has {len(names)} sheet(s); sheet {sheet} does not exist",
                                   hint=f"set data.options.sheet to a name ({', '.join(names)}) or 0..{len(names) - 1}")
            return book.get_sheet_by_index(sheet), names[sheet]
        if sheet not in names:
            raise ExtractError(f"{path.name} has no sheet {sheet!r}; its sheets: {', '.join(names)}",
                               hint="set data.options.sheet to one of them")
        return book.get_sheet_by_name(sheet), sheet

    def read(self, path: Path, *, batch_rows: int) -> Iterator[pa.RecordBatch]:
        sheet, sheet_name = self._sheet(path)
        rows = iter(sheet.iter_rows())
        header = None
        for _ in range(self.opts.header_row):
            header = next(rows, None)
        if header is None:
            raise ExtractError(f"{path.name}, sheet {sheet_name!r}: no row {self.opts.header_row} to take "
                               "column names from", hint="set data.options.header_row to the row holding them")
        names = _names(list(header))
        where = {"file": path.name, "sheet": sheet_name, "first_row": self.opts.header_row + 1}
        yield from _Batcher(names, set(self.opts.text), self.opts.infer_rows, batch_rows, where).run(rows)

    def write_example(self, folder: Path) -> Path:
        """A small ``.xlsx`` (numbers, text with a blank, dates, booleans), written with zipfile."""
        rows = [["x", "city", "when", "flag"]]
        rows += [[i * 1.5, f"c{i % 3}" if i % 4 else "", dt.datetime(2024, 1, 1 + i), i % 2 == 0]
                 for i in range(12)]
        return write_xlsx(folder / "example.xlsx", rows)


class _Batcher:
    """Rows (lists of cells) to record batches with one schema (chosen on the first rows)."""

    def __init__(self, names: list[str], text: set[str], infer_rows: int, batch_rows: int,
                 where: dict[str, Any]) -> None:
        self.names, self.text, self.infer_rows, self.batch_rows = names, text, infer_rows, batch_rows
        self.where = where
        self.schema: pa.Schema | None = None
        self.row = where["first_row"]  # the sheet row of the next row read (1-based)

    def run(self, rows: Iterator[list[Any]]) -> Iterator[pa.RecordBatch]:
        pending: list[tuple[int, list[Any]]] = []
        for cells in rows:
            number, self.row = self.row, self.row + 1
            if all(c in (None, "") for c in cells):
                continue
            pending.append((number, list(cells)))
            if self.schema is None and len(pending) < self.infer_rows:
                continue
            if self.schema is None:
                self.schema = self._infer(pending)
            while len(pending) >= self.batch_rows:
                yield self._batch(pending[: self.batch_rows])
                pending = pending[self.batch_rows:]
        if self.schema is None:
            self.schema = self._infer(pending)
        for start in range(0, len(pending), self.batch_rows):
            yield self._batch(pending[start:start + self.batch_rows])
        if not pending and self.schema is not None and self.row == self.where["first_row"]:
            yield pa.RecordBatch.from_pylist([], schema=self.schema)

    def _infer(self, rows: list[tuple[int, list[Any]]]) -> pa.Schema:
        columns = [[cells[i] if i < len(cells) else None for _, cells in rows] for i in range(len(self.names))]
        kinds = [_TEXT if n in self.text else _column_kind(col) for n, col in zip(self.names, columns, strict=True)]
        return pa.schema([pa.field(n, _ARROW[k]) for n, k in zip(self.names, kinds, strict=True)])

    def _batch(self, rows: list[tuple[int, list[Any]]]) -> pa.RecordBatch:
        assert self.schema is not None
        arrays = []
        for i, field in enumerate(self.schema):
            values = [_cell(cells[i] if i < len(cells) else None, field.type) for _, cells in rows]
            try:
                arrays.append(pa.array(values, type=field.type))
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
                raise self._misfit(rows, i, field, exc) from None
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def _misfit(self, rows: list[tuple[int, list[Any]]], i: int, field: pa.Field, exc: Exception) -> ExtractError:
        bad = next(((n, c[i]) for n, c in rows if i < len(c) and not _fits(c[i], field.type)), (rows[0][0], "?"))
        w = self.where
        return ExtractError(
            f"{w['file']}, sheet {w['sheet']!r}, row {bad[0]}, column {field.name!r}: {bad[1]!r} does not fit "
            f"the column's type {field.type}, chosen from its first {self.infer_rows} rows ({exc})",
            hint=f"read it as text with data.options.text: [{field.name}], or raise data.options.infer_rows",
        )


def _cell(value: Any, type_: pa.DataType) -> Any:
    """A cell as the column's type takes it (empty cells are null)."""
    if value is None or value == "":
        return None
    if pa.types.is_string(type_):
        return value.isoformat() if isinstance(value, (dt.date, dt.time)) else str(value)
    if pa.types.is_floating(type_) and isinstance(value, bool):
        return float(value)
    if pa.types.is_timestamp(type_) and type(value) is dt.date:
        return dt.datetime(value.year, value.month, value.day)
    return value


def _fits(value: Any, type_: pa.DataType) -> bool:
    try:
        pa.array([_cell(value, type_)], type=type_)
        return True
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
        return False


# -- a minimal .xlsx writer (for the conformance checks' example file; no dependency) -------------


def _xml_cell(ref: str, value: Any) -> str:
    from xml.sax.saxutils import escape

    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return f'<c r="{ref}" t="b"><v>{int(value)}</v></c>'
    if isinstance(value, (int, float)):
        return f'<c r="{ref}"><v>{value!r}</v></c>'
    if isinstance(value, dt.datetime):  # a serial date, shown with the built-in date-time format
        serial = (value - dt.datetime(1899, 12, 30)).total_seconds() / 86400
        return f'<c r="{ref}" s="1"><v>{serial!r}</v></c>'
    return f'<c r="{ref}" t="inlineStr"><is><t>{escape(str(value))}</t></is></c>'


def write_xlsx(path: Path, rows: list[list[Any]], sheet: str = "Sheet1") -> Path:
    """Write ``rows`` as the one sheet of a minimal ``.xlsx`` file."""
    from xml.sax.saxutils import quoteattr

    def ref(r: int, c: int) -> str:
        letters = ""
        c += 1
        while c:
            c, rem = divmod(c - 1, 26)
            letters = chr(65 + rem) + letters
        return f"{letters}{r + 1}"

    body = "".join(f'<row r="{r + 1}">' + "".join(_xml_cell(ref(r, c), v) for c, v in enumerate(row)) + "</row>"
                   for r, row in enumerate(rows))
    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    parts = {
        "[Content_Types].xml": (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.'
            'spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-'
            'officedocument.spreadsheetml.worksheet+xml"/>'
            '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.'
            'spreadsheetml.styles+xml"/></Types>'),
        "_rels/.rels": (f'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                        f'<Relationship Id="rId1" Type="{rel}/officeDocument" Target="xl/workbook.xml"/>'
                        '</Relationships>'),
        "xl/workbook.xml": (f'<workbook {ns} xmlns:r="{rel}"><sheets><sheet name={quoteattr(sheet)} '
                            'sheetId="1" r:id="rId1"/></sheets></workbook>'),
        "xl/_rels/workbook.xml.rels": (
            f'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/>'
            f'<Relationship Id="rId2" Type="{rel}/styles" Target="styles.xml"/></Relationships>'),
        "xl/styles.xml": (f'<styleSheet {ns}><cellXfs count="2"><xf numFmtId="0"/>'
                          '<xf numFmtId="22" applyNumberFormat="1"/></cellXfs></styleSheet>'),
        "xl/worksheets/sheet1.xml": f"<worksheet {ns}><sheetData>{body}</sheetData></worksheet>",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in parts.items():
            # a fixed date, so the same rows always give the same bytes
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            zf.writestr(info, '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' + text,
                        compress_type=zipfile.ZIP_DEFLATED)
    return path
