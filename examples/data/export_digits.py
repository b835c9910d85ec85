"""Exports scikit-learn's bundled handwritten-digits data set as CSV for the examples.

Run from the repository root:  python3 examples/data/export_digits.py
Writes examples/data/digits.csv (see README.md there).

digits.csv  1797 rows; header p0,p1,...,p63,label. Each row is one 8x8 image from
            load_digits(), flattened row by row: column pK is the pixel in image
            row K // 8, column K % 8 (the same order as load_digits().data). Pixel
            values are the integers 0..16 (scikit-learn holds them as float64, but
            every one is integral, which the script checks), written without a
            decimal point. label is the digit 0..9. Rows keep scikit-learn's order.
The script re-reads the file and checks that it reproduces scikit-learn's arrays.
"""
import os

import numpy as np
import sklearn
from sklearn.datasets import load_digits

HERE = os.path.dirname(os.path.abspath(__file__))
HEADER = [f"p{k}" for k in range(64)] + ["label"]

digits = load_digits()
pixels = np.asarray(digits.data, dtype=np.float64)
labels = np.asarray(digits.target, dtype=np.int64)
assert pixels.shape == (1797, 64) and labels.shape == (1797,)
assert np.array_equal(pixels, np.round(pixels)), "non-integral pixel value"
assert pixels.min() == 0 and pixels.max() == 16
assert labels.min() == 0 and labels.max() == 9
# The flattening order the header promises.
assert np.array_equal(pixels, np.asarray(digits.images).reshape(1797, 64))
ints = pixels.astype(np.int64)

path = os.path.join(HERE, "digits.csv")
with open(path, "w", newline="\n") as f:
    f.write(",".join(HEADER) + "\n")
    for row, label in zip(ints, labels):
        f.write(",".join(str(int(v)) for v in row) + f",{int(label)}\n")

# Round trip.
with open(path) as f:
    lines = f.read().splitlines()
assert lines[0].split(",") == HEADER and len(lines) == 1 + 1797
back = np.array([[int(v) for v in line.split(",")] for line in lines[1:]], dtype=np.int64)
assert np.array_equal(back[:, :64], ints) and np.array_equal(back[:, 64], labels)
assert np.array_equal(back[:, :64].astype(np.float64), pixels)

counts = np.bincount(labels, minlength=10)
print(f"wrote {os.path.relpath(path)}: {os.path.getsize(path)} bytes (scikit-learn {sklearn.__version__}); "
      f"images per digit 0..9: {' '.join(str(c) for c in counts)}")
