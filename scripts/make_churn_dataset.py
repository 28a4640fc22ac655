"""Generate the bundled churn dataset of the training pipeline, once, with a fixed seed.

    python scripts/make_churn_dataset.py

writes src/mlops/pipelines/training/data/churn.csv: 2,000 synthetic telecom customers,
nine features (numeric and categorical, some missing values) and a binary label,
``churned``. The churn probability follows a logistic model of contract, tenure,
charges, support calls, satisfaction, internet service and payment method, plus noise,
so a good model reaches a ROC AUC of about 0.8, not 1.0. The file is committed; run
this only to change the data (and say so in the change, since cached runs and
registered models were trained on the old file).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

SEED = 20240601
ROWS = 2000
TARGET = Path(__file__).resolve().parents[1] / "src/mlops/pipelines/training/data/churn.csv"

CONTRACTS = ("month-to-month", "one-year", "two-year")
PAYMENTS = ("electronic-check", "mailed-check", "bank-transfer", "credit-card")
INTERNET = ("dsl", "fiber", "none")
REGIONS = ("north", "south", "east", "west")
COLUMNS = (
    "tenure_months",
    "monthly_charges",
    "contract",
    "payment_method",
    "internet_service",
    "support_calls",
    "num_products",
    "satisfaction",
    "region",
    "churned",
)


def main() -> None:
    rng = np.random.default_rng(SEED)
    contract = rng.choice(len(CONTRACTS), size=ROWS, p=[0.55, 0.25, 0.20])
    tenure = np.minimum(rng.gamma(1.4 + contract, 10.0), 72).astype(int)
    internet = rng.choice(len(INTERNET), size=ROWS, p=[0.40, 0.45, 0.15])
    products = 1 + rng.binomial(4, 0.3, size=ROWS)
    base_charge = np.array([45.0, 75.0, 20.0])[internet]
    charges = np.round(base_charge + 6.5 * products + rng.normal(0, 8, ROWS), 2).clip(15, 130)
    payment = rng.choice(len(PAYMENTS), size=ROWS, p=[0.35, 0.20, 0.22, 0.23])
    support_calls = rng.poisson(1.2 + 0.6 * (internet == 1), size=ROWS)
    satisfaction = np.round(np.clip(rng.normal(3.6 - 0.25 * support_calls, 0.9), 1, 5), 1)
    region = rng.choice(len(REGIONS), size=ROWS)

    logit = (
        -1.1
        + 1.2 * (contract == 0)
        - 0.9 * (contract == 2)
        - 0.035 * tenure
        + 0.015 * (charges - 65)
        + 0.30 * support_calls
        - 0.55 * (satisfaction - 3)
        + 0.45 * (internet == 1)
        + 0.40 * (payment == 0)
        - 0.12 * products
        + 0.15 * (region == 1)
        + rng.normal(0, 0.6, ROWS)
    )
    churned = rng.random(ROWS) < 1 / (1 + np.exp(-logit))

    missing_charges = rng.random(ROWS) < 0.03
    missing_payment = rng.random(ROWS) < 0.04
    missing_satisfaction = rng.random(ROWS) < 0.06

    TARGET.parent.mkdir(parents=True, exist_ok=True)
    with TARGET.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        for i in range(ROWS):
            writer.writerow(
                [
                    int(tenure[i]),
                    "" if missing_charges[i] else f"{charges[i]:.2f}",
                    CONTRACTS[contract[i]],
                    "" if missing_payment[i] else PAYMENTS[payment[i]],
                    INTERNET[internet[i]],
                    int(support_calls[i]),
                    int(products[i]),
                    "" if missing_satisfaction[i] else f"{satisfaction[i]:.1f}",
                    REGIONS[region[i]],
                    int(churned[i]),
                ]
            )
    size_kb = math.ceil(TARGET.stat().st_size / 1024)
    print(f"wrote {ROWS} rows to {TARGET} ({size_kb} KB, churn rate {churned.mean():.1%})")


if __name__ == "__main__":
    main()
