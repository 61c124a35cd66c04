"""Reading raw input in the Sunnybrook layout, and the problem codes of everything wrong with it.

- ``links``: link.csv (which DICOM folder goes with which contour folder);
- ``listing``: a study's folders as read once (names, entry types, symbolic links followed by
  config ``follow_symlinks``), whose digest stands for the pairing;
- ``pairing``: a study's DICOM and contour files paired by slice number, from listings alone;
- ``contours``: contour file names and contents;
- ``dicom_slice``: one DICOM slice's header checks, pixels and rescale;
- ``problems``: the stable problem codes and the rows of ``validation.parquet``;
- ``phantom``: the built-in synthetic raw dataset (rule ``generate_phantom``).
"""
