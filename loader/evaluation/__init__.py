"""Scoring a model's predictions against a dataset version (``python -m loader evaluate``).

- :func:`save_prediction` writes one sample's predicted mask(s) into a predictions folder;
- :func:`evaluate` scores a predictions folder: per manual contour Dice, APD, Hausdorff,
  detected, good (APD < 5 mm); per study EDV, ESV, EF and LV mass against the manual ones;
  the challenge's summary;
- :class:`~loader.evaluation.contour_files.ContourExport` writes the predicted contours as the
  Sunnybrook challenge's evaluator reads them;
- :func:`write_page` draws the evaluation page (volume curves, worst contours).

Needs scikit-image and SciPy (``pip install lv-dataset[evaluate]``). See docs/evaluation.md.
"""

import importlib
from typing import Any

# Public name -> module; imported on first use, so that ``import loader`` (which offers
# save_prediction) does not pay for pandas, SciPy and scikit-image.
_NAMES = {
    "GOOD_APD_MM": "scoring",
    "Evaluation": "scoring",
    "evaluate": "scoring",
    "summarize": "scoring",
    "ContourScore": "metrics",
    "score_contour": "metrics",
    "PredictionError": "predictions",
    "save_prediction": "predictions",
    "ed_es_phases": "volumes",
    "ejection_fraction": "volumes",
    "volume_curve_ml": "volumes",
    "write_page": "page",
}
__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    if name not in _NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_NAMES[name]}"), name)
