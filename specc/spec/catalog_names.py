"""The catalog's loss and metric names, as the Literal types the spec models validate
against (specc.spec.model) and plugins are checked against (specc.custom_losses).
"""
from typing import Literal

LossName = Literal[
    "categorical_crossentropy", "sparse_categorical_crossentropy", "binary_crossentropy",
    "binary_focal_crossentropy", "categorical_focal_crossentropy",
    "mean_squared_error", "mse", "mean_absolute_error", "mae",
    "mean_absolute_percentage_error", "mape", "mean_squared_logarithmic_error", "msle",
    "huber", "log_cosh", "kl_divergence", "poisson", "cosine_similarity",
    "hinge", "squared_hinge", "categorical_hinge",
]
MetricName = Literal[
    "accuracy", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
    "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy",
    "mean_squared_error", "mse", "mean_absolute_error", "mae",
    "mean_absolute_percentage_error", "mape", "mean_squared_logarithmic_error", "msle",
    "root_mean_squared_error", "auc", "precision", "recall",
    "binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy",
    "kl_divergence", "poisson", "cosine_similarity", "log_cosh_error",
]
