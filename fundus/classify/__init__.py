# Downstream classifier study: does adding synthetic images improve a DR classifier? config (study definition),
# data (patient-aware sets, leakage guard), sources (synthetic images), models (recipe), study (resumable cell
# store), evaluate and stats (metrics, CIs, paired tests), plots and outputs (study.json, CSV, HTML page).
