"""Building studies (rule ``build_studies``, one batch of studies per job).

- ``batch``: a batch of studies, the workflow's unit of work: each built as alone, in the job's
  process or a pool of worker processes;
- ``build``: one study's build, and reading each labelled slice;
- ``slices``: one labelled slice's working state, and the only code that records its problems;
- ``masks``: polygons to boolean masks (the pixel-centre rule);
- ``checks``: the checks that compare a slice with its study (shapes, label sanity);
- ``frames``: with ``frames: all``, every frame of the study's cine as one stack and its rows;
- ``outputs``: writing the samples, overlays, contact sheet, plot, pairing table and report page;
- ``study_qc``: the study's figures, plot and report page, from its own rows and problems;
- ``options``: the config sections a study's build follows.
"""
