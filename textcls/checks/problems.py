"""A data check problem: its level ("error" stops `fit`, "warning" does not), code, message and examples."""

from textcls.data.io import DataError


def problem(level: str, code: str, message: str, examples: list | None = None) -> dict:
    """One problem of the report, JSON-ready."""
    return {"level": level, "code": code, "message": message, "examples": examples or []}


def raise_on_errors(report: dict) -> None:
    """Raise DataError (one line) naming the first error and how many more there are."""
    errors = [p for p in report["problems"] if p["level"] == "error"]
    if errors:
        more = f" (and {len(errors) - 1} more errors: run `textcls check-data`)" if len(errors) > 1 else ""
        raise DataError(f"data check: {errors[0]['message']}{more}")
