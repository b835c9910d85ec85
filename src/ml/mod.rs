//! Classic machine learning.
//!
//! | module | what | reference |
//! |---|---|---|
//! | [`linear_regression`] | linear regression by SGD (mini-batch, or scikit-learn's `SGDRegressor` rule) and in closed form (QR least squares) | scikit-learn `SGDRegressor`, `LinearRegression` |
//! | [`kmeans`] | k-means (Lloyd, k-means++, restarts, empty-cluster relocation) and an online MacQueen update | scikit-learn `KMeans(algorithm="lloyd")` |

pub mod kmeans;
pub mod linear_regression;

pub use kmeans::*;
pub use linear_regression::*;
