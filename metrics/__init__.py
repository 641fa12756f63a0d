# Metric registry, feature statistics, detectors and one module per metric family.
