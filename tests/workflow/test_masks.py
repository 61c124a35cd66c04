"""Masks: hand-computed shapes, an independent per-pixel reference, and the area property."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from workflow_scripts.study.masks import contour_to_mask, polygon_area


def mask_from_rows(rows: list[str]) -> np.ndarray:
    return np.array([[c == "#" for c in row] for row in rows])


def test_square_covers_pixel_centres_inside_with_top_left_rule():
    # Square with corners on pixel centres (1,1)-(3,3): area 4. Centres on its left/top edges
    # are in, on its right/bottom edges out, so exactly 2x2 pixels.
    mask = contour_to_mask(np.array([(1, 1), (3, 1), (3, 3), (1, 3)], float), (5, 5))
    expected = mask_from_rows([".....", ".##..", ".##..", ".....", "....."])
    np.testing.assert_array_equal(mask, expected)


def test_mask_shape_is_rows_by_columns_and_x_is_the_column():
    # A wide, short rectangle: x spans columns 0.5..4.5, y spans rows 0.5..1.5 (centre row 1).
    mask = contour_to_mask(np.array([(0.5, 0.5), (4.5, 0.5), (4.5, 1.5), (0.5, 1.5)]), (3, 6))
    assert mask.shape == (3, 6)
    expected = mask_from_rows(["......", ".####.", "......"])
    np.testing.assert_array_equal(mask, expected)


def test_triangle_hand_computed():
    # Right triangle (0,0), (4,0), (0,4): centres with x + y < 4 are inside; centres on the
    # hypotenuse x + y = 4 lie on a right edge and are out; the top and left edges are in.
    mask = contour_to_mask(np.array([(0, 0), (4, 0), (0, 4)], float), (5, 6))
    expected = mask_from_rows(["####..", "###...", "##....", "#.....", "......"])
    np.testing.assert_array_equal(mask, expected)


def test_half_pixel_polygon_like_the_real_files():
    # A diamond on the half-pixel grid around centre (2, 2): vertices at (2, 0.5), (3.5, 2),
    # (2, 3.5), (0.5, 2). Centres with |x-2| + |y-2| < 1.5 are inside: the 5-pixel cross plus
    # the 4 diagonal neighbours (|dx| + |dy| = 2 > 1.5 excluded) -> only the cross.
    diamond = np.array([(2, 0.5), (3.5, 2), (2, 3.5), (0.5, 2)])
    expected = mask_from_rows([".....", "..#..", ".###.", "..#..", "....."])
    np.testing.assert_array_equal(contour_to_mask(diamond, (5, 5)), expected)


def test_polygon_partly_outside_the_image_is_clipped():
    mask = contour_to_mask(np.array([(-3, -3), (2, -3), (2, 2), (-3, 2)], float), (4, 4))
    expected = mask_from_rows(["##..", "##..", "....", "...."])
    np.testing.assert_array_equal(mask, expected)


def test_degenerate_polygon_gives_empty_mask():
    assert not contour_to_mask(np.array([(1, 1), (3, 3), (5, 5)], float), (8, 8)).any()


def reference_mask(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Per-pixel ray casting to the right: an independent, slow implementation of the rule."""
    rows, columns = shape
    mask = np.zeros(shape, dtype=bool)
    n = len(points)
    for r in range(rows):
        for c in range(columns):
            inside = False
            for k in range(n):
                (xa, ya), (xb, yb) = points[k], points[(k + 1) % n]
                if (ya <= r) != (yb <= r):
                    x_cross = xa + (r - ya) * (xb - xa) / (yb - ya)
                    if x_cross > c:
                        inside = not inside
            mask[r, c] = inside
    return mask


half_grid = st.integers(min_value=-4, max_value=40).map(lambda v: v / 2)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(half_grid, half_grid), min_size=3, max_size=12))
def test_matches_per_pixel_ray_casting_on_random_half_pixel_polygons(vertices):
    points = np.array(vertices, dtype=float)
    np.testing.assert_array_equal(
        contour_to_mask(points, (18, 21)), reference_mask(points, (18, 21))
    )


def test_pixel_counts_are_unbiased_estimates_of_polygon_area():
    # Over many random ellipses, count - area averages ~0 per unit of perimeter; a rule that
    # added or removed the one-pixel outline (as the prototype's PIL call did) would be off by
    # about half a pixel per unit of perimeter.
    rng = np.random.default_rng(7)
    differences, perimeters = [], []
    for _ in range(200):
        cx, cy = rng.uniform(25, 39, size=2)
        ax, ay = rng.uniform(5, 20, size=2)
        angles = np.sort(rng.uniform(0, 2 * np.pi, size=int(rng.integers(24, 200))))
        points = np.stack([cx + ax * np.cos(angles), cy + ay * np.sin(angles)], axis=1)
        closed = np.vstack([points, points[:1]])
        differences.append(int(contour_to_mask(points, (64, 64)).sum()) - polygon_area(points))
        perimeters.append(float(np.sum(np.hypot(*np.diff(closed, axis=0).T))))
    bias_per_perimeter = np.sum(differences) / np.sum(perimeters)
    assert abs(bias_per_perimeter) < 0.05


def test_polygon_area_of_unit_square():
    assert polygon_area(np.array([(0, 0), (1, 0), (1, 1), (0, 1)], float)) == 1.0
