import numpy as np
import pytest
from pydicom.uid import MPEG4HP41, JPEG2000Lossless, RLELossless

import dicom_factory as make
from workflow_scripts.raw.dicom_slice import read_dicom_slice
from workflow_scripts.raw.problems import InputProblem

LIMIT = 4096 * 4096


def read(data: bytes):
    return read_dicom_slice(data, LIMIT)


def problem_code(data: bytes, limit: int = LIMIT) -> str:
    with pytest.raises(InputProblem) as raised:
        read_dicom_slice(data, limit)
    return raised.value.code


def test_pixels_are_returned_as_stored_without_rescale_tags():
    image = make.pixels()
    result = read(make.standard(image))
    assert result.pixels.dtype == np.int16
    np.testing.assert_array_equal(result.pixels, image)
    assert result.instance_number == 3
    assert result.window == (600.0, 1200.0)
    assert result.has_file_meta


def test_rescale_is_applied_when_present():
    image = make.pixels()
    result = read(make.standard(image, RescaleSlope=2, RescaleIntercept=-100))
    assert result.pixels.dtype == np.float32
    np.testing.assert_allclose(result.pixels, image.astype(np.float64) * 2 - 100)


def test_missing_slope_means_one_not_zero():
    # The prototype read a missing slope as 0 and blanked the image.
    image = make.pixels()
    result = read(make.standard(image, RescaleIntercept=5))
    np.testing.assert_allclose(result.pixels, image.astype(np.float64) + 5)


def test_identity_rescale_keeps_the_stored_dtype():
    result = read(make.standard(make.pixels(), RescaleSlope=1, RescaleIntercept=0))
    assert result.pixels.dtype == np.int16


@pytest.mark.parametrize("encode", [make.implicit_vr, make.big_endian])
def test_other_uncompressed_encodings_are_read(encode):
    image = make.pixels()
    np.testing.assert_array_equal(read(encode(image)).pixels, image)


def test_file_without_preamble_and_file_meta_is_read_and_flagged():
    image = make.pixels()
    result = read(make.without_file_meta(image))
    np.testing.assert_array_equal(result.pixels, image)
    assert not result.has_file_meta


def test_rle_compressed_pixels_are_decoded_by_pydicom_itself():
    image = make.pixels()
    np.testing.assert_array_equal(read(make.compressed(image, RLELossless)).pixels, image)


def test_jpeg2000_is_decoded_with_the_installed_codec():
    pytest.importorskip("openjpeg", reason="pylibjpeg-openjpeg is a project dependency")
    image = make.pixels()
    np.testing.assert_array_equal(read(make.compressed(image, JPEG2000Lossless)).pixels, image)


def test_syntax_without_any_decoder_gets_codec_missing():
    assert (
        problem_code(make.with_syntax_and_payload(MPEG4HP41, b"\0" * 64)) == "dicom_codec_missing"
    )


def test_codec_missing_when_no_plugin_is_installed(monkeypatch):
    import workflow_scripts.raw.dicom_slice as module

    class Unavailable:
        is_available = False

    monkeypatch.setattr(module, "get_decoder", lambda syntax: Unavailable())
    data = make.compressed(make.pixels(), RLELossless)
    assert problem_code(data) == "dicom_codec_missing"


def test_corrupt_compressed_data_is_unreadable_not_codec_missing():
    assert problem_code(make.with_syntax_and_payload(RLELossless, b"\0" * 64)) == "dicom_unreadable"


@pytest.mark.parametrize("cut", [0.5, 0.999])
def test_truncated_file_is_unreadable(cut):
    data = make.standard()
    assert problem_code(data[: int(len(data) * cut)]) == "dicom_unreadable"


def test_file_cut_before_the_pixels_has_no_pixels():
    assert problem_code(make.standard()[:700]) == "dicom_no_pixels"


@pytest.mark.parametrize(
    "data", [b"", b"hello world\n" * 20, b"\0" * 300, b"%PDF-1.4\n" + b"x" * 400]
)
def test_non_dicom_bytes_are_unreadable(data):
    assert problem_code(data) == "dicom_unreadable"


def test_colour_image_is_refused():
    assert problem_code(make.colour()) == "dicom_not_grayscale"


def test_multiframe_file_is_refused():
    assert problem_code(make.multiframe()) == "dicom_multiframe"


def test_enormous_header_is_refused_before_decoding():
    assert problem_code(make.huge_header(60000, 60000)) == "dicom_too_large"


def test_pixel_limit_is_configurable():
    assert problem_code(make.standard(make.pixels(64, 64)), limit=64 * 64 - 1) == "dicom_too_large"
