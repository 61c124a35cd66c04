"""What a person looks at to judge the labels, and the decisions that come back.

- ``overlays``: one overlay per sample and a contact sheet per study (drawn by each study's build);
- ``figures``: the label figures, from the version's tables or a study's own rows (areas in mm²
  or pixels, ratios, intensity percentiles);
- ``study_plot``: a study's mask-area plot, drawn with Pillow by each study's build;
- ``plots``: the dataset's matplotlib plots (rule ``plot_qc``);
- ``review_sheet`` (and its template ``review_sheet.html``): the page where a reviewer marks
  slices to exclude and downloads ``exclusions.csv``;
- ``version_qc``: the version's dataset plots and review sheet (rule ``plot_qc``);
- ``summary``: a study's report page (made by its build), and gathering the pages and flagged
  overlays for the report (rule ``summarize_qc``);
- ``exclusions``: reading and checking the reviewed exclusions file (config ``exclusions``).
"""
