"""Exports scikit-learn's bundled diabetes and iris data sets as CSV for the examples.

Run from the repository root:  python3 examples/data/export.py
Writes examples/data/diabetes.csv and examples/data/iris.csv (see README.md there).

diabetes.csv  442 rows; header age,sex,bmi,bp,s1,s2,s3,s4,s5,s6,target. The ten
              features are load_diabetes()'s default scaled copy (each column
              centred and scaled to unit sum of squares); the target is the raw
              disease-progression measure. Every value is written with Python's
              repr, the shortest decimal that reads back as the same float64, so
              parsing the file gives bit-identical arrays to scikit-learn's.
iris.csv      150 rows; header sepal_length,sepal_width,petal_length,petal_width,
              species, measurements in cm (repr of the float64 values) and species
              0 = setosa, 1 = versicolor, 2 = virginica.
The script re-reads both files and checks that they round-trip exactly.
"""
import os

import numpy as np
import sklearn
from sklearn.datasets import load_diabetes, load_iris

HERE = os.path.dirname(os.path.abspath(__file__))
DIABETES_HEADER = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6", "target"]
IRIS_HEADER = ["sepal_length", "sepal_width", "petal_length", "petal_width", "species"]


def write_csv(path, header, rows):
    with open(path, "w", newline="\n") as f:
        f.write(",".join(header) + "\n")
        for row in rows:
            f.write(",".join(row) + "\n")


def read_back(path):
    with open(path) as f:
        lines = f.read().splitlines()
    return lines[0].split(","), [line.split(",") for line in lines[1:]]


diabetes = load_diabetes()
assert list(diabetes.feature_names) == DIABETES_HEADER[:-1], diabetes.feature_names
dx = np.asarray(diabetes.data, dtype=np.float64)
dy = np.asarray(diabetes.target, dtype=np.float64)
diabetes_path = os.path.join(HERE, "diabetes.csv")
write_csv(diabetes_path, DIABETES_HEADER,
          ([repr(float(v)) for v in x] + [repr(float(t))] for x, t in zip(dx, dy)))

iris = load_iris()
assert list(iris.target_names) == ["setosa", "versicolor", "virginica"]
ix = np.asarray(iris.data, dtype=np.float64)
iy = np.asarray(iris.target, dtype=np.int64)
iris_path = os.path.join(HERE, "iris.csv")
write_csv(iris_path, IRIS_HEADER, ([repr(float(v)) for v in x] + [str(int(c))] for x, c in zip(ix, iy)))

# Round trip: the text must parse back to exactly the same numbers.
header, rows = read_back(diabetes_path)
assert header == DIABETES_HEADER and len(rows) == 442
back = np.array([[float(v) for v in r] for r in rows])
assert np.array_equal(back[:, :10], dx) and np.array_equal(back[:, 10], dy)
header, rows = read_back(iris_path)
assert header == IRIS_HEADER and len(rows) == 150
assert np.array_equal(np.array([[float(v) for v in r[:4]] for r in rows]), ix)
assert [int(r[4]) for r in rows] == iy.tolist()

for p in (diabetes_path, iris_path):
    print(f"wrote {os.path.relpath(p)}: {os.path.getsize(p)} bytes (scikit-learn {sklearn.__version__})")
