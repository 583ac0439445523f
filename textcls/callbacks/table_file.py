"""A table written in parts, as CSV, JSONL or Parquet (by extension), under a temporary name renamed at
the end: rows are appended as they are ready (Parquet: one row group per part), and a run that stops
midway leaves no half-written file under the final name."""

import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


class TableFile:
    """Appends frames with the same columns to `path`'s temporary name; `close` renames it to `path`,
    `discard` deletes it."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.name}.tmp{os.getpid()}")
        self.kind = {".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet"}.get(
            self.path.suffix.lower(), "csv"
        )
        self.rows, self.parts = 0, 0
        self._parquet: pq.ParquetWriter | None = None
        self.tmp.unlink(missing_ok=True)

    def append(self, frame: pd.DataFrame) -> None:
        """Write `frame`'s rows after those already written (the first part also names the columns)."""
        if self.kind == "parquet":
            self._append_parquet(frame)
        elif self.kind == "jsonl":
            with open(self.tmp, "a", encoding="utf-8") as f:
                frame.to_json(f, orient="records", lines=True, force_ascii=False)
        else:
            frame.to_csv(self.tmp, mode="a", header=self.parts == 0, index=False)
        self.rows += len(frame)
        self.parts += 1

    def _append_parquet(self, frame: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._parquet is None:
            self._parquet = pq.ParquetWriter(self.tmp, table.schema)
        elif not table.schema.equals(self._parquet.schema):
            # a column whose type pandas infers per part (an id column with gaps in one part only)
            table = table.cast(self._parquet.schema)
        self._parquet.write_table(table)

    def close(self) -> None:
        """Finish the file and give it its name (an empty table when nothing was appended)."""
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None
        elif not self.tmp.exists():
            self.tmp.touch()
        os.replace(self.tmp, self.path)

    def discard(self) -> None:
        """Drop what was written (a run that failed midway)."""
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None
        self.tmp.unlink(missing_ok=True)
