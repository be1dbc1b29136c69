"""The dataset generator turns MNIST digits into samples of the UCI kind (scripts/builtin/mnist.py)."""
import numpy as np

from scripts.builtin.mnist import uci_sample


def test_a_digit_is_scaled_to_fill_the_box_on_its_longer_side_and_counted_in_blocks():
    one = np.zeros((28, 28), np.uint8)
    one[6:22, 13:16] = 255            # a tall thin stroke: 16 high, 3 wide
    sample = uci_sample(one)
    assert sample.shape == (8, 8) and sample.dtype == np.uint8 and sample.max() <= 16
    assert np.count_nonzero(sample.any(axis=1)) == 8          # fills the height
    assert np.count_nonzero(sample.any(axis=0)) <= 2          # stays thin, centred
    assert sample[:, 3:5].sum() == sample.sum()


def test_a_solid_square_is_all_ink_and_faint_grey_is_no_ink():
    square = np.zeros((28, 28), np.uint8)
    square[4:24, 4:24] = 200
    assert (uci_sample(square) == 16).all()
    faint = square.copy()
    faint[0, 0] = 20                  # below the ink level: does not widen the crop
    assert (uci_sample(faint) == 16).all()
