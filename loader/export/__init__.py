"""Exports of a built version for the field's frameworks (``python -m loader export``; see
``docs/exports.md``):

- :func:`export_nnunet`: an nnU-Net v2 raw dataset and the version's patient-level folds as
  nnU-Net's ``splits_final.json`` (``loader.export.nnunet``; needs SimpleITK).
- :func:`export_monai`: a MONAI datalist naming the version's npz files, and
  :func:`monai_transforms`, the MONAI transforms that load them with their spacing
  (``loader.export.monai``; MONAI is imported only when the transforms are made).

Both share the selection and label policy of ``loader.export.cases``.
"""

from loader.export.cases import LABEL_POLICIES
from loader.export.monai import export_monai, monai_transforms
from loader.export.nnunet import export_nnunet

__all__ = ["LABEL_POLICIES", "export_monai", "export_nnunet", "monai_transforms"]
