"""The one-line error of `textcls label-issues`."""


class LabelIssuesError(ValueError):
    """Options or data `label-issues` cannot work with; the message says what to change."""
