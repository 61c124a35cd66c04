"""What a person looks at to judge the labels.

- ``overlays``: one overlay per sample and a contact sheet per study (drawn by each study's build);
- ``summary``: flagged slices by problem code and the label figures, for the report (rule
  ``summarize_qc``).
"""
