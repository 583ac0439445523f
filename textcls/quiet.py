"""Library noise that textcls hides unless `--verbose` (or TEXTCLS_VERBOSE=1): deprecation warnings,
transformers load reports and progress bars, Lightning's advertisements and warnings that are expected."""

import logging
import warnings


class _DropTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip")


def quiet_libraries() -> None:
    """Keep the lines that matter visible: no library deprecation warnings, no transformers load
    reports or advice, no Lightning advertisements."""
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    for category in (DeprecationWarning, FutureWarning, PendingDeprecationWarning):
        warnings.filterwarnings("ignore", category=category)
    # test/predict restore a checkpoint from another run's folder: expected, not a problem
    warnings.filterwarnings("ignore", message="The dirpath has changed")
    # mixed precision: the summary counts fp32 weights' bytes, which is right for bf16-mixed and 16-mixed
    warnings.filterwarnings("ignore", message="Precision .* is not supported by the model summary")
    # a regression's Spearman keeps every score of the split to rank them: a validation or test split's
    # worth of floats, known and intended
    warnings.filterwarnings("ignore", message="Metric `SpearmanCorrcoef` will save all targets")
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropTips) for f in logger.filters):
            logger.addFilter(_DropTips())
