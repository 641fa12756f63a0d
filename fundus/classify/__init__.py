# Downstream classifier study: does adding synthetic images improve a DR classifier? (models, conditions, leak-proof splits, resumable study, statistics).
