"""Regenerate farmcredit/credit/default_risk_model.json from the documented synthetic history.

Usage: python scripts/fit_default_risk_model.py
"""

from pathlib import Path

from farmcredit.credit.history import fit_risk_model, write_risk_model
from farmcredit.credit.portfolio import TRUE_LOGIT, synthetic_history

if __name__ == "__main__":
    history = synthetic_history()
    model = fit_risk_model(
        history,
        source="synthetic portfolio: farmcredit.credit.portfolio.synthetic_history(loans_per_season=3000, seed=0), "
        f"seasons 2019-2024, {len(history)} loans; true log-odds {TRUE_LOGIT}",
        note="SYNTHETIC: not fitted on real repayments. Refit on your own history with `farmcredit credit fit`.",
    )
    path = Path(__file__).resolve().parents[1] / "farmcredit" / "credit" / "default_risk_model.json"
    print(f"wrote {write_risk_model(model, path)}: {model['card']['metrics']}")
