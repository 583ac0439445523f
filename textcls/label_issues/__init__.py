"""Which labels are likely wrong: `textcls label-issues` (out-of-fold probabilities ranked by cleanlab)
and the app's page that turns its findings into a corrections file (applied by `data.corrections_file`)."""

from textcls.label_issues.command import LabelIssuesCLI, label_issues
from textcls.label_issues.errors import LabelIssuesError

__all__ = ["LabelIssuesCLI", "LabelIssuesError", "label_issues"]
